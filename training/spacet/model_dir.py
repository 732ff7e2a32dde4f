"""The SPACE-T model directory a job starts from, resolved like a served model's `source` and checked."""

from __future__ import annotations

from pathlib import Path

from deployments.model_source import parse_model_source, resolve_model_path

# What modelscope's TableQuestionAnswering reads: its config (with the encoder's sizes), weights and vocabulary.
MODEL_FILES = ("configuration.json", "pytorch_model.bin", "vocab.txt")
WEIGHTS = "pytorch_model.bin"


def resolve_spacet_model(source: str) -> Path:
    """A local directory, or one fetched from the ModelScope hub into the model cache (ModelSourceError if not)."""
    directory = resolve_model_path(parse_model_source(source))
    missing = [name for name in MODEL_FILES if not (directory / name).is_file()]
    if missing:
        raise ValueError(
            f"{source!r} is not a SPACE-T model directory: it lacks {', '.join(missing)} "
            "(download damo/nlp_convai_text2sql_pretrain_cn, or use its modelscope: id)"
        )
    return directory
