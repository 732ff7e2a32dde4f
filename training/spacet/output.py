"""The fine-tuned SPACE-T model directory, which `backend: modelscope_tableqa` loads as `source`.

    <output_dir>/<name>/
        configuration.json, vocab.txt, ...    the source model's files, as they were
        pytorch_model.bin                     the fine-tuned weights ({backbone_model, head_model}, the same layout)
        text2sql-finetune.json                the source and its weights' sha256, the data's sha256, the job's
                                              config, and the metrics (loss, ModelScope's scores per epoch)
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from deployments.digests import file_sha256
from training.records import data_sha256
from training.spacet.config import SpaceTTrainingConfig
from training.spacet.model_dir import MODEL_FILES, WEIGHTS
from training.spacet.worker import METRICS

logger = logging.getLogger(__name__)

METADATA = "text2sql-finetune.json"


def write_model_dir(trained: Path, config: SpaceTTrainingConfig, source: Path, *, target: Path) -> Path:
    """Copy the checkpoint's model into `target` (replacing an older one of that name), with the metadata."""
    missing = [name for name in (*MODEL_FILES, METRICS) if not (trained / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the run's checkpoint {trained} lacks {', '.join(missing)}")
    metrics: dict[str, Any] = json.loads((trained / METRICS).read_text())
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(trained, partial, ignore=shutil.ignore_patterns(METRICS))
    data = {"train": data_sha256(config.data.train)}
    if config.data.eval is not None:
        data["eval"] = data_sha256(config.data.eval)
    metadata = {
        "name": config.name,
        "model": config.model,
        "model_weights_sha256": file_sha256(source / WEIGHTS),
        "weights_sha256": file_sha256(partial / WEIGHTS),
        "data_sha256": data,
        "training_config": config.model_dump(mode="json"),
        "metrics": metrics,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (partial / METADATA).write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial.rename(target)
    logger.info("fine-tuned SPACE-T written to %s", target)
    return target
