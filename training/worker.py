"""What every Ray Train worker runs: its own copy of the data and the base model, LoRA on top, trl's SFTTrainer.

Ray Train starts the workers and torch.distributed (gloo on CPU, NCCL on GPUs); transformers' Trainer sees the
process group and trains data-parallel. Checkpoints: the Trainer saves every `checkpoint_every_steps` and at
the last step, and RayTrainReportCallback hands each one to Ray Train, which copies it to `storage_path`. At the
end every worker reports once more; the first one attaches the finished adapter (`adapter/`) beside the last
Trainer checkpoint (`checkpoint/`). When a run of the same name is restored, `ray.train.get_checkpoint()` is its
latest checkpoint, and training continues from its `checkpoint/` (a finished run continues to a larger max_steps).
"""

from __future__ import annotations

import json
import logging
import resource
import shutil
import tempfile
from pathlib import Path
from typing import Any

from training.config import TrainingConfig
from training.examples import load_examples
from training.progress import ProgressCallback

logger = logging.getLogger(__name__)

FINAL_ADAPTER = "adapter"
FINAL_METRICS = "metrics.json"
HF_CHECKPOINT = "checkpoint"  # RayTrainReportCallback's name for the Trainer checkpoint inside a Ray checkpoint


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    import ray.train
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer
    from transformers.trainer_utils import get_last_checkpoint

    config = TrainingConfig.model_validate(loop_config["config"])
    context = ray.train.get_context()
    rank = context.get_world_rank()
    examples = load_examples(config)
    if rank == 0:
        logger.info("%d training and %d held-out examples (%s)", len(examples.train), len(examples.held_out), examples.dropped_summary())

    restored = ray.train.get_checkpoint()
    with tempfile.TemporaryDirectory(prefix="t2s-train-") as work:
        trainer = prepare_trainer(
            build_trainer(config, examples, Path(work), callbacks=[ProgressCallback(config.log_every_steps), RayTrainReportCallback()])
        )
        resumed_from_step = 0
        if restored is not None:
            with restored.as_directory() as directory:
                state = json.loads((Path(directory) / HF_CHECKPOINT / "trainer_state.json").read_text())
                resumed_from_step = state["global_step"]
                logger.info("resuming from %s at step %d", restored.path, resumed_from_step)
                output = trainer.train(resume_from_checkpoint=str(Path(directory) / HF_CHECKPOINT))
        else:
            output = trainer.train()
        metrics = {
            "train_loss": output.training_loss,
            "global_step": output.global_step,
            "resumed_from_step": resumed_from_step,
            "examples": len(examples.train),
            "held_out": len(examples.held_out),
            "dropped": examples.dropped,
            "base_in_4bit": bool(getattr(trainer.model, "is_loaded_in_4bit", False)),
            # This worker's peak resident memory (Linux reports KiB); the model, optimizer state and activations.
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "loss_curve": [entry["loss"] for entry in trainer.state.log_history if "loss" in entry],
            **{k: v for k, v in output.metrics.items() if isinstance(v, (int, float))},
        }
        if examples.held_out:
            metrics["eval_loss"] = trainer.evaluate()["eval_loss"]
        adapter_dir = Path(work) / "final"
        if rank == 0:
            trainer.model.save_pretrained(adapter_dir / FINAL_ADAPTER)
            (adapter_dir / FINAL_METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
            last = get_last_checkpoint(str(Path(work) / "trainer"))
            if last is not None:  # a later --resume with more steps continues from here
                shutil.copytree(last, adapter_dir / HF_CHECKPOINT)
        _report_final(metrics, adapter_dir=adapter_dir if rank == 0 else None, rank=rank)


def build_trainer(config: TrainingConfig, examples: Any, work: Path, *, callbacks: list) -> Any:
    """trl's SFTTrainer over the rendered examples (prompt-completion: the loss falls on the SQL only)."""
    from datasets import Dataset
    from trl import SFTTrainer

    from training.model import load_for_training, lora_config, sft_arguments

    model, tokenizer = load_for_training(config)
    trainer = SFTTrainer(
        model=model,
        args=sft_arguments(config, output_dir=work / "trainer", has_eval=bool(examples.held_out)),
        train_dataset=Dataset.from_list(examples.train),
        eval_dataset=Dataset.from_list(examples.held_out) if examples.held_out else None,
        processing_class=tokenizer,
        peft_config=lora_config(config),
        callbacks=callbacks,
    )
    # trl drops an example whose SQL lies wholly beyond max_length (nothing left to learn); say so, and stop
    # when nothing is left rather than fail deep inside the sampler.
    kept = len(trainer.train_dataset)
    if kept < len(examples.train):
        message = (f"{len(examples.train) - kept} of {len(examples.train)} examples are longer than "
                   f"optim.max_length={config.optim.max_length} tokens before their SQL starts")
        if kept == 0:
            raise ValueError(message + ": nothing is left to train on; raise optim.max_length")
        logger.warning("%s: left out", message)
    return trainer


def _report_final(metrics: dict[str, Any], *, adapter_dir: Path | None, rank: int) -> None:
    """Every worker reports (Ray Train waits for all of them); only the first attaches the adapter."""
    import ray.train

    checkpoint = ray.train.Checkpoint.from_directory(str(adapter_dir)) if rank == 0 and adapter_dir else None
    reported = {k: v for k, v in metrics.items() if isinstance(v, (int, float))} | {"final": 1}
    ray.train.report(reported, checkpoint=checkpoint)
