"""What the Ray Train worker runs: ModelScope's TableQuestionAnsweringTrainer, as it is, on the checked records.

    records -> items         examples.py, here in the worker (data is loaded where it is trained on)
    ModelScope's trainer     on a working copy of the model directory: it saves its best epoch (by its own
                             scores on the held-out items, the last of equals) as finetuned_model.bin inside the
                             directory it was given, and the source directory must stay as it is
    after every epoch        the epoch's mean loss and ModelScope's scores, reported to Ray Train
    at the end               the fine-tuned model directory (the source's files, with the saved epoch's weights
                             as pytorch_model.bin) reported as the run's checkpoint

Two things are done around the trainer, through its own objects. It builds the model with Model.from_pretrained's
default device, 'gpu', which fails on a CPU-only machine at the first tensor, so the model is moved to the
worker's device with the model's own `to()`. And its loss and scoring methods are wrapped on this instance only,
to record the loss of every step and report each epoch. Its DataLoader runs 4 worker processes (fixed in the
trainer): they are forked from this Ray worker.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from training.spacet.config import SpaceTTrainingConfig
from training.spacet.model_dir import WEIGHTS, resolve_spacet_model

logger = logging.getLogger(__name__)

FINETUNED = "finetuned_model.bin"  # where ModelScope's trainer saves the epoch it keeps
METRICS = "metrics.json"


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch
    import torch
    from modelscope.metainfo import Trainers
    from modelscope.trainers import build_trainer

    from training.spacet.examples import load_examples

    config = SpaceTTrainingConfig.model_validate(loop_config["config"])
    _seed(config.optim.seed)
    torch.set_num_threads(max(1, int(config.scaling.resources_per_worker.get("CPU", 1))))
    source = resolve_spacet_model(config.model)
    with tempfile.TemporaryDirectory(prefix="t2s-spacet-") as scratch:
        work = Path(scratch)
        examples = load_examples(config, source, work / "tables")
        logger.info(
            "%d training and %d held-out records%s", len(examples.train), len(examples.held_out),
            " (no held-out data: epochs are scored on the training records)" if examples.scored_on_train else "",
        )
        model_dir = _working_copy(source, work / "model")
        trainer = build_trainer(
            name=Trainers.table_question_answering_trainer,
            default_args={"model": str(model_dir), "train_dataset": examples.train, "eval_dataset": examples.held_out},
        )
        trainer.model.to(str(ray.train.torch.get_device()))
        recorder = EpochRecorder(trainer, steps_per_epoch=math.ceil(len(examples.train) / config.optim.batch_size))
        optim = config.optim
        trainer.train(
            batch_size=optim.batch_size,
            total_epoches=optim.epochs,
            backbone_learning_rate=optim.backbone_learning_rate,
            head_learning_rate=optim.head_learning_rate,
            backbone_weight_decay=optim.backbone_weight_decay,
            head_weight_decay=optim.head_weight_decay,
            warmup_ratio=optim.warmup_ratio,
        )
        metrics = recorder.summary() | {
            "examples": len(examples.train),
            "held_out": len(examples.held_out),
            "scored_on_train": examples.scored_on_train,
        }
        final = _final_model(source, model_dir, metrics, work / "final")
        reported = {k: v for k, v in metrics.items() if isinstance(v, (int, float))} | {"final": 1}
        ray.train.report(reported, checkpoint=ray.train.Checkpoint.from_directory(str(final)))


class EpochRecorder:
    """The loss of every step and ModelScope's scores of every epoch, each epoch reported to Ray Train."""

    def __init__(self, trainer: Any, *, steps_per_epoch: int) -> None:
        self.losses: list[float] = []
        self.epochs: list[dict[str, Any]] = []
        self._steps_per_epoch = steps_per_epoch
        loss_of, scores_of = trainer.loss_sw_se, trainer.calculate_scores

        def recording_loss(*args: Any, **kwargs: Any) -> Any:
            loss = loss_of(*args, **kwargs)
            self.losses.append(float(loss.item()))
            return loss

        def reporting_scores(answers: list, results: list, epoch: int = 0) -> dict[str, float]:
            scores = scores_of(answers, results, epoch=epoch)
            self._epoch_done(epoch, scores)
            return scores

        # Instance attributes shadow the methods for this trainer alone; the trainer calls them as self.<name>.
        trainer.loss_sw_se = recording_loss
        trainer.calculate_scores = reporting_scores

    def _epoch_done(self, epoch: int, scores: dict[str, float]) -> None:
        import ray.train

        steps = self.losses[-self._steps_per_epoch:]
        entry = {"epoch": epoch, "train_loss": sum(steps) / len(steps), **scores}
        self.epochs.append(entry)
        logger.info("epoch %d: loss %.4f, accuracy %.3f", epoch, entry["train_loss"], scores["accuracy"])
        ray.train.report({k: v for k, v in entry.items() if isinstance(v, (int, float))})

    def summary(self) -> dict[str, Any]:
        best = max(self.epochs, key=lambda e: (e["accuracy"], e["epoch"]))  # ModelScope keeps the last of equals
        return {
            "epochs": len(self.epochs),
            "steps": len(self.losses),
            "first_loss": self.losses[0],
            "last_loss": self.losses[-1],
            "kept_epoch": best["epoch"],
            "kept_accuracy": best["accuracy"],
            "epoch_scores": self.epochs,
        }


def _working_copy(source: Path, target: Path) -> Path:
    """Links to the source's files, so the trainer's save lands here; never a link to an older finetuned_model.bin,
    which the save would write through into the source."""
    target.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name != FINETUNED:
            (target / entry.name).symlink_to(entry.resolve())
    return target


def _final_model(source: Path, model_dir: Path, metrics: dict[str, Any], target: Path) -> Path:
    saved = model_dir / FINETUNED
    if not saved.is_file():
        raise RuntimeError(f"ModelScope's trainer saved no epoch ({FINETUNED} is missing in its model directory)")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(WEIGHTS, FINETUNED))
    shutil.copyfile(saved, target / WEIGHTS)  # the same {backbone_model, head_model} layout the engine loads
    (target / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    return target


def _seed(seed: int) -> None:
    import numpy
    import torch

    random.seed(seed)
    numpy.random.seed(seed)
    torch.manual_seed(seed)
