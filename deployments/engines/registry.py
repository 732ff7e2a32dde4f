"""Backend name -> the function that builds its engine, imported only when a model uses that backend, so heavy
libraries (torch, vllm, modelscope) stay out of every other replica.

Each backend module exposes `build(config, model_path) -> Engine`; its settings model lives in `settings.py`.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from deployments.model_source import parse_model_source, resolve_model_path
from text2sql.pipeline.engine import Engine

if TYPE_CHECKING:
    from deployments.config import ModelConfig

ENGINE_BUILDERS: dict[str, str] = {
    "llama_cpp": "deployments.engines.llama_cpp:build",
    "transformers": "deployments.engines.transformers:build",
    "vllm": "deployments.engines.vllm:build",
    "modelscope_tableqa": "deployments.engines.modelscope_tableqa:build",
}


def engine_builder(backend: str) -> Callable[[ModelConfig, Path], Engine]:
    try:
        module_name, function_name = ENGINE_BUILDERS[backend].split(":")
    except KeyError:
        raise ValueError(f"backend {backend!r} has no engine; known: {', '.join(sorted(ENGINE_BUILDERS))}") from None
    return getattr(importlib.import_module(module_name), function_name)


def build_engine(config: ModelConfig, *, timings: dict[str, float] | None = None) -> Engine:
    """The engine for `config`, with its weights resolved to a local path (downloading or assembling).

    `timings`, when given, receives `files_s` (resolving the weights: an assembly or download on a cold cache) and
    `load_s` (reading them into the engine), so a cold start can say where its time went."""
    started = time.perf_counter()
    model_path = resolve_model_path(parse_model_source(config.source))
    resolved = time.perf_counter()
    engine = engine_builder(config.engine.backend)(config, model_path)
    if timings is not None:
        timings.update(files_s=resolved - started, load_s=time.perf_counter() - resolved)
    return engine
