"""The finished adapter directory: peft's files, what it was trained from, and a GGUF LoRA for llama.cpp.

    <output_dir>/<name>/
        adapter_config.json, adapter_model.safetensors   peft's LoRA (what both engines load)
        adapter.gguf                                      the same LoRA for llama.cpp (GGUF bases only)
        text2sql-adapter.json                             base model and its sha256, prompt template, training
                                                          config, data sha256, metrics
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from training.base_model import BaseModel
from training.config import TrainingConfig
from training.records import data_sha256

logger = logging.getLogger(__name__)

METADATA = "text2sql-adapter.json"
GGUF_LORA = "adapter.gguf"
PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")


def write_adapter(
    trained: Path, config: TrainingConfig, base: BaseModel, metrics: dict[str, Any], *, target: Path
) -> Path:
    """Copy peft's files from `trained` into `target` (replacing an older adapter of that name) with metadata."""
    missing = [name for name in PEFT_FILES if not (trained / name).is_file()]
    if missing:
        raise FileNotFoundError(f"the trained adapter in {trained} lacks {', '.join(missing)}")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in PEFT_FILES:
        shutil.copy2(trained / name, partial / name)
    _portable_base_name(partial / "adapter_config.json", config.base_model)
    gguf = _export_gguf(partial, base, config) if config.export_gguf else None
    metadata = {
        "name": config.name,
        "base_model": config.base_model,
        "base_model_sha256": base.sha256,
        "served_base": config.served_base,
        "prompt_template": config.prompt_template,
        "data_sha256": {"train": data_sha256(config.data.train), **({"eval": data_sha256(config.data.eval)} if config.data.eval else {})},
        "training_config": config.model_dump(mode="json"),
        "metrics": metrics,
        "gguf_lora": gguf,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (partial / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    logger.info("adapter written to %s", target)
    return target


def read_metadata(adapter: Path) -> dict[str, Any]:
    return json.loads((adapter / METADATA).read_text())


def update_metadata(adapter: Path, **fields: Any) -> None:
    metadata = read_metadata(adapter) | fields
    (adapter / METADATA).write_text(json.dumps(metadata, indent=2) + "\n")


def _portable_base_name(adapter_config: Path, base_model: str) -> None:
    # peft records the directory it loaded the base from (here a machine's model cache); the source is portable.
    config = json.loads(adapter_config.read_text())
    config["base_model_name_or_path"] = base_model
    adapter_config.write_text(json.dumps(config, indent=2) + "\n")


def _export_gguf(adapter: Path, base: BaseModel, config: TrainingConfig) -> str | None:
    if base.gguf is None:
        logger.info("no GGUF LoRA: the base model is not a GGUF (llama.cpp serves GGUF bases only)")
        return None
    from deployments.engines.gguf_lora import GgufBase, check_convertible, write_gguf_lora
    from deployments.engines.peft_lora import read_peft_lora

    lora, gguf_base = read_peft_lora(adapter), GgufBase.read(base.gguf)
    check_convertible(lora, gguf_base, base_name=config.base_model)
    write_gguf_lora(lora, gguf_base, adapter / GGUF_LORA)
    return GGUF_LORA
