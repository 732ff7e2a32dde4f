"""The base model a job trains on: where its weights are, as a plain HF checkpoint, and what it is (for the record).

`base_model` is written like a served model's `source`. A GGUF (the embedded models) is dequantized once into a
plain float32 checkpoint and cached (deployments/engines/transformers_loading.py), because trl refuses a model
still marked as GGUF-quantized; the GGUF itself is kept, to export a GGUF LoRA for the llama.cpp engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from deployments.digests import file_sha256
from deployments.model_source import parse_model_source, resolve_model_path


@dataclass(frozen=True)
class BaseModel:
    source: str  # as configured: embedded:<name>, a path, hf:<repo>
    checkpoint: Path  # a plain HF model directory
    gguf: Path | None  # the GGUF it came from, when it came from one
    sha256: str  # of the GGUF file, or of the checkpoint's weight files in name order


def resolve_base_model(source: str) -> BaseModel:
    """Fetch (or find in the cache) and, for a GGUF, convert; safe to call from several workers at once."""
    from deployments.engines.settings import TransformersSettings
    from deployments.engines.transformers_loading import converted_checkpoint, is_gguf

    path = resolve_model_path(parse_model_source(source))
    if is_gguf(path):
        checkpoint = converted_checkpoint(path, TransformersSettings(torch_dtype="fp32"))
        return BaseModel(source=source, checkpoint=checkpoint, gguf=path, sha256=file_sha256(path))
    if not (path / "config.json").is_file():
        raise ValueError(f"base_model {source!r} resolves to {path}, which is neither a .gguf file nor an HF model directory")
    return BaseModel(source=source, checkpoint=path, gguf=None, sha256=weights_sha256(path))


def weights_sha256(directory: Path) -> str:
    """One digest over the checkpoint's weight files (name and content), independent of the directory's path."""
    digest = hashlib.sha256()
    for weights in sorted([*directory.glob("*.safetensors"), *directory.glob("*.bin")]):
        digest.update(weights.name.encode())
        digest.update(file_sha256(weights).encode())
    return digest.hexdigest()
