"""Fine-tune SPACE-T (the `modelscope_tableqa` backend's model) with ModelScope's own trainer, as a Ray Train job.

    python -m training.spacet --config training/configs/<name>.yaml [--fresh]
    ray job submit --working-dir . -- python -m training.spacet --config ...    # the same, on a cluster

Every line of the data is checked here first, with the model's tokenizer, before any worker starts: a bad line
stops the job with `path:line: what is wrong`. One Ray Train worker (TorchTrainer) then runs ModelScope's
TableQuestionAnsweringTrainer (training/spacet/worker.py) and reports the fine-tuned model as the run's
checkpoint in `storage_path/<name>`; it is written to `<output_dir>/<name>/`, a directory to use as the `source`
of a `backend: modelscope_tableqa` model.

ModelScope's trainer keeps no optimizer or epoch state, so a run cannot be continued: a name that already has a
run is refused unless `--fresh` deletes it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from training.spacet.config import SpaceTTrainingConfig, load_spacet_config

logger = logging.getLogger("training.spacet")


def fit(config: SpaceTTrainingConfig):
    """Run the Ray Train job; its result (the final checkpoint holds the fine-tuned model)."""
    from training.spacet.worker import train_loop_per_worker
    from training.train import run_torch_trainer

    return run_torch_trainer(train_loop_per_worker, config, keep_checkpoints=1)


def finish(config: SpaceTTrainingConfig, result, source: Path) -> Path:
    from training.spacet.output import write_model_dir
    from training.train import run_dir_uri

    if result.checkpoint is None:
        raise RuntimeError(f"the run finished without a checkpoint; see its logs in {run_dir_uri(config)}")
    with result.checkpoint.as_directory() as directory:
        return write_model_dir(Path(directory), config, source, target=config.output_dir / config.name)


def check_data(config: SpaceTTrainingConfig, source: Path) -> None:
    """Build every item as the worker will (DataError names the bad lines), in a scratch directory."""
    from training.spacet.examples import load_examples

    with tempfile.TemporaryDirectory(prefix="t2s-spacet-check-") as scratch:
        examples = load_examples(config, source, Path(scratch))
    logger.info("data checked: %d training and %d held-out records", len(examples.train), len(examples.held_out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.spacet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="SPACE-T training config YAML")
    parser.add_argument("--fresh", action="store_true", help="delete an earlier run of this name and start over")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)

    try:
        config = load_spacet_config(args.config)
    except (OSError, ValueError) as e:
        logger.error("%s: %s", args.config, e)
        return 2
    # training.train's run-directory helpers read only `name` and `storage_path`, which this config has too.
    from training.train import delete_run, run_dir_uri, run_exists

    if run_exists(config):
        if not args.fresh:
            logger.error(
                "a run named %r already exists in %s: ModelScope's trainer cannot continue it; pass --fresh to "
                "start over, or rename it", config.name, run_dir_uri(config),
            )
            return 2
        logger.info("deleting the earlier run %s (--fresh)", run_dir_uri(config))
        delete_run(config)

    from deployments.model_source import ModelSourceError
    from training.spacet.model_dir import resolve_spacet_model

    try:
        source = resolve_spacet_model(config.model)
        check_data(config, source)
    except (ModelSourceError, ValueError) as e:  # DataError is a ValueError: its lines, one per bad record
        logger.error("%s", e)
        return 2
    except ImportError as e:
        logger.error("SPACE-T fine-tuning needs modelscope: pip install 'text2sql-serve[modelscope,training]' (%s)", e)
        return 2

    import ray

    if not ray.is_initialized():
        ray.init()
    result = fit(config)
    target = finish(config, result, source)
    logger.info("fine-tuned model %s: %s", target, json.dumps(result.metrics))
    return 0

