"""Fine-tune a served model with LoRA/QLoRA as a Ray Train job.

    python -m training.train --config training/configs/<name>.yaml [--resume] [--register http://app:8000]

The same command runs unchanged on a cluster: `ray job submit --working-dir . -- python -m training.train ...`.
It connects to the Ray it runs under (a job's cluster, or RAY_ADDRESS) and otherwise starts a local one.

Every run is named by the config's `name` and keeps its checkpoints in `storage_path/<name>`. `--resume`
continues that run from its latest checkpoint; without it, a run whose name is already in storage is refused
(`--fresh` deletes it and starts over), so a finished run is never overwritten by mistake.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from training.config import TrainingConfig, load_training_config

logger = logging.getLogger("training")


def storage_uri(config: TrainingConfig) -> str:
    """An absolute directory or a URI such as s3://bucket/prefix (Ray Train needs one or the other)."""
    storage = config.storage_path
    return storage if "://" in storage else str(Path(storage).expanduser().resolve())


def run_dir_uri(config: TrainingConfig) -> str:
    return f"{storage_uri(config).rstrip('/')}/{config.name}"


def _filesystem(uri: str):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(uri)


def run_exists(config: TrainingConfig) -> bool:
    import pyarrow.fs

    fs, path = _filesystem(run_dir_uri(config))
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def delete_run(config: TrainingConfig) -> None:
    fs, path = _filesystem(run_dir_uri(config))
    fs.delete_dir(path)


def fit(config: TrainingConfig):
    """Run the Ray Train job; its result (the final checkpoint holds the adapter)."""
    from training.worker import train_loop_per_worker

    return run_torch_trainer(train_loop_per_worker, config, keep_checkpoints=config.keep_checkpoints)


def run_torch_trainer(train_loop: Any, config: Any, *, keep_checkpoints: int):
    """A TorchTrainer of `train_loop` for a job config with `name`, `scaling` and `storage_path` (the LoRA job's
    and SPACE-T's): each worker gets the config back as `{"config": ...}`. Its fit() result."""
    from ray.train import CheckpointConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(
        functools.partial(_in_directory, os.getcwd(), train_loop),
        train_loop_config={"config": config.model_dump(mode="json")},
        scaling_config=ScalingConfig(
            num_workers=config.scaling.num_workers,
            use_gpu=config.scaling.use_gpu,
            resources_per_worker=dict(config.scaling.resources_per_worker),
        ),
        run_config=RunConfig(
            name=config.name,
            storage_path=storage_uri(config),
            checkpoint_config=CheckpointConfig(num_to_keep=keep_checkpoints),
        ),
    )
    return trainer.fit()


def _in_directory(directory: str, train_loop: Any, loop_config: dict[str, Any]) -> None:
    """Run a worker's loop where the driver ran, so the config's relative paths (data/..., ../shared/...) mean the
    same to both: Ray starts workers elsewhere. Under `ray job submit --working-dir .` the workers already sit in
    the job's working directory, which is where the driver ran."""
    if Path(directory).is_dir():
        os.chdir(directory)
    train_loop(loop_config)


def finish(config: TrainingConfig, result) -> Path:
    """The adapter directory, from the run's final checkpoint."""
    from training.adapter_output import write_adapter
    from training.base_model import resolve_base_model
    from training.worker import FINAL_ADAPTER, FINAL_METRICS

    if result.checkpoint is None:
        raise RuntimeError(f"the run finished without a checkpoint; see its logs in {run_dir_uri(config)}")
    with result.checkpoint.as_directory() as directory:
        final = Path(directory)
        if not (final / FINAL_ADAPTER).is_dir():
            raise RuntimeError(f"the run's latest checkpoint {result.checkpoint.path} holds no finished adapter")
        metrics = json.loads((final / FINAL_METRICS).read_text())
        return write_adapter(
            final / FINAL_ADAPTER, config, resolve_base_model(config.base_model), metrics,
            target=config.output_dir / config.name,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="training config YAML")
    parser.add_argument("--resume", action="store_true", help="continue the run of this name from its latest checkpoint")
    parser.add_argument("--fresh", action="store_true", help="delete an earlier run of this name and start over")
    parser.add_argument("--register", metavar="APP_URL", help="register the adapter into this running app (admin key: $T2S_ADMIN_KEY)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)

    try:
        config = load_training_config(args.config)
    except (OSError, ValueError) as e:
        logger.error("%s: %s", args.config, e)
        return 2
    if args.register and not config.served_base:
        logger.error("--register needs `served_base` in %s: the served model the adapter adapts", args.config)
        return 2
    if args.resume and args.fresh:
        logger.error("--resume and --fresh contradict each other")
        return 2
    if run_exists(config):
        if args.fresh:
            logger.info("deleting the earlier run %s (--fresh)", run_dir_uri(config))
            delete_run(config)
        elif not args.resume:
            logger.error(
                "a run named %r already exists in %s: pass --resume to continue it, --fresh to start over, or rename it",
                config.name, run_dir_uri(config),
            )
            return 2
    elif args.resume:
        logger.info("nothing to resume in %s: starting the run", run_dir_uri(config))

    # Fail on bad data here, with the line numbers, before any worker starts.
    from training.jsonl import DataError
    from training.records import load_records

    try:
        load_records(config.data.train, databases=config.data.databases)
        if config.data.eval is not None:
            load_records(config.data.eval, databases=config.data.databases)
    except DataError as e:
        logger.error("%s", e)
        return 2

    import ray

    if not ray.is_initialized():
        ray.init()
    result = fit(config)
    adapter = finish(config, result)
    logger.info("adapter %s: %s", adapter, json.dumps(result.metrics))

    if config.evaluation.enabled:
        from training.evaluate import evaluate_held_out

        evaluate_held_out(config, adapter)
    if args.register:
        from training.register import RegistrationError, register_adapter

        try:
            registered = register_adapter(
                args.register, name=config.name, base=config.served_base, path=adapter.resolve(),
                prompt_template=config.prompt_template,
            )
        except RegistrationError as e:
            logger.error("%s", e)
            return 1
        logger.info("registered as %s", registered.get("model_id", registered))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
