"""`build_engine`: the engine for a model config, with its weights resolved to a local path."""

from __future__ import annotations

from deployments.config import ModelConfig
from deployments.engines.base import Engine
from deployments.model_source import parse_model_source, resolve_model_path


def build_engine(config: ModelConfig) -> Engine:
    """The engine for `config`, with its weights resolved to a local path (downloading or assembling)."""
    model_path = resolve_model_path(parse_model_source(config.source))
    if config.backend == "llama_cpp":
        from deployments.engines.llama_cpp import LlamaCppEngine

        settings = config.engine
        return LlamaCppEngine(
            model_path,
            n_ctx=settings.n_ctx,
            # Threads follow the CPUs Ray reserved for the replica, so replicas do not fight over cores.
            n_threads=settings.n_threads or max(1, int(config.ray_actor_options.num_cpus)),
            n_batch=settings.n_batch,
            use_mmap=settings.use_mmap,
            chat_format=settings.chat_format,
            generation_timeout_s=config.generation_timeout_s,
        )
    raise ValueError(f"backend {config.backend!r} is not available")
