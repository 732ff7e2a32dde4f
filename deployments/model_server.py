"""One model deployment: owns an engine and runs the Text-to-SQL and OpenAI serving logic on it.

A plain class; `deployments/builder.py` turns it into a Serve deployment with
`get_deployment_options(config)`, so the options are testable without Ray.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from deployments.config import ModelConfig, PipelineSettings
from deployments.engines.registry import build_engine
from deployments.protocol.openai import ChatCompletionRequest, CompletionRequest, UsageInfo
from deployments.protocol.sql import SqlGenerateRequest, SqlGenerateResponse
from deployments.serving import openai_serving
from deployments.serving.sql_generation import generate_sql
from text2sql.pipeline.engine import Engine
from text2sql.pipeline.inputs import SchemaContext

logger = logging.getLogger(__name__)


class ModelServer:
    # Serve awaits an async __init__, so the weights load before the replica takes traffic.
    async def __init__(
        self,
        config: ModelConfig,
        engine: Engine | None = None,
        *,
        pipeline: PipelineSettings | None = None,
    ) -> None:
        self._config = config
        self._pipeline = pipeline or PipelineSettings()
        self._requests_served = 0
        if engine is None:
            # Resolving may assemble or download gigabytes; keep the replica's event loop free meanwhile.
            engine = await asyncio.to_thread(build_engine, config)
        await engine.start()
        self._engine = engine
        logger.info("model %s ready (pid %d)", config.name, os.getpid())

    @staticmethod
    def get_deployment_options(config: ModelConfig) -> dict[str, Any]:
        options: dict[str, Any] = {
            "name": config.name,
            "ray_actor_options": config.ray_actor_options.model_dump(exclude_none=True),
            "max_ongoing_requests": config.max_ongoing_requests,
            "max_queued_requests": config.max_queued_requests,
            "health_check_period_s": 10,
            "health_check_timeout_s": 30,
            # Let an in-flight generation finish before the replica stops.
            "graceful_shutdown_timeout_s": 20,
        }
        if config.autoscaling_config is not None:
            options["autoscaling_config"] = config.autoscaling_config.model_dump(exclude_none=True)
        else:
            options["num_replicas"] = config.num_replicas
        return options

    async def generate_sql(
        self, request: SqlGenerateRequest, context: SchemaContext, sent_at: float
    ) -> SqlGenerateResponse:
        """`context` is resolved by the ingress: the schema, and where the SQL may run when it is to run."""
        self._requests_served += 1
        return await generate_sql(
            self._engine,
            self._config,
            request,
            context,
            pipeline=self._pipeline,
            queue_ms=_since_ms(sent_at),
            grammar_for=_grammar_for if self._engine.capabilities.grammar else None,
        )

    async def chat(self, request: ChatCompletionRequest, sent_at: float):
        self._requests_served += 1
        return await openai_serving.chat_completion(self._engine, self._config, request)

    async def complete(self, request: CompletionRequest, sent_at: float):
        self._requests_served += 1
        return await openai_serving.completion(self._engine, self._config, request)

    async def stream_chat(self, request: ChatCompletionRequest, sent_at: float) -> AsyncIterator[str | UsageInfo]:
        self._requests_served += 1
        async for chunk in openai_serving.chat_completion_stream(self._engine, self._config, request):
            yield _stream_item(chunk)

    async def stream_complete(self, request: CompletionRequest, sent_at: float) -> AsyncIterator[str | UsageInfo]:
        self._requests_served += 1
        async for chunk in openai_serving.completion_stream(self._engine, self._config, request):
            yield _stream_item(chunk)

    async def check_health(self) -> None:
        """Serve's controller calls this periodically; raising marks the replica unhealthy."""
        await self._engine.check_health()

    def stats(self) -> dict[str, Any]:
        """This replica's own counters: which model it is and how many requests it served."""
        return {"model": self._config.name, "requests_served": self._requests_served, "pid": os.getpid()}


def _grammar_for(schema, dialect: str) -> str:
    from text2sql.grammar import cached_sql_grammar

    return cached_sql_grammar(schema, dialect)


def _since_ms(sent_at: float) -> float:
    return max(0.0, (time.time() - sent_at) * 1000)


def _stream_item(chunk: Any) -> str | UsageInfo:
    """Chunks cross to the ingress as their JSON text, ready for SSE; the usage stays an object for its metrics."""
    return chunk if isinstance(chunk, UsageInfo) else chunk.model_dump_json(exclude_none=True)
