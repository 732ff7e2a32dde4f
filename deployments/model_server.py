"""One model deployment: owns an engine and runs the Text-to-SQL and OpenAI serving logic on it.

A plain class; `deployments/builder.py` turns it into a Serve deployment with
`get_deployment_options(config)`, so the options are testable without Ray.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from deployments.adapters.catalog import RegisteredAdapter
from deployments.adapters.replica import ReplicaAdapters
from deployments.config import ModelConfig, PipelineSettings
from deployments.engines.registry import build_engine
from deployments.protocol.openai import ChatCompletionRequest, CompletionRequest, UsageInfo
from deployments.protocol.sql import SqlGenerateRequest, SqlGenerateResponse
from deployments.serving import openai_serving, table_qa
from deployments.serving.sql_generation import generate_sql, model_profile
from deployments.telemetry import ReplicaTelemetry
from text2sql.pipeline.engine import AdapterNotSupported, Engine
from text2sql.pipeline.inputs import SchemaContext
from text2sql.pipeline.warm import warm_prefix

logger = logging.getLogger(__name__)

# How often a replica asks the catalogue which adapters still exist, and drops the ones deleted.
ADAPTER_SYNC_PERIOD_S = 2.0
# How long a new replica keeps asking the ingress which databases to warm (the ingress may still be starting).
WARM_SOURCE_WAIT_S = 600.0


class ModelServer:
    # Serve awaits an async __init__, so the weights load before the replica takes traffic.
    async def __init__(
        self,
        config: ModelConfig,
        engine: Engine | None = None,
        *,
        pipeline: PipelineSettings | None = None,
        catalog: Any | None = None,
        warm_from: str | None = None,
    ) -> None:
        """`catalog` is the AdapterCatalog deployment's handle; without it the model serves no adapters.
        `warm_from` names the app's ingress deployment: the replica asks it which databases to prefill once it has
        started, so replicas that autoscaling adds (or that restart) are as warm as the first."""
        self._config = config
        self._pipeline = pipeline or PipelineSettings()
        self._requests_served = 0
        self._telemetry = ReplicaTelemetry(config.name)
        self._warmed: dict[str, float] = {}  # database -> milliseconds its prefix took to prefill
        self._startup: dict[str, float] = {}  # where this replica's start went: files_s, load_s, start_s
        self._started_at = time.time()  # wall clock, so a client can tell how long the replica took to be placed
        started = time.perf_counter()
        if engine is None:
            # Resolving may assemble or download gigabytes; keep the replica's event loop free meanwhile.
            engine = await asyncio.to_thread(functools.partial(build_engine, config, timings=self._startup))
        await engine.start()
        self._startup["start_s"] = time.perf_counter() - started
        self._engine = engine
        self._catalog = catalog
        self._adapters: ReplicaAdapters | None = None
        if catalog is not None and engine.capabilities.adapters:
            from ray import serve

            self._adapters = ReplicaAdapters(
                engine,
                max_loaded=config.max_adapters_per_replica,
                multiplexed=serve.multiplexed(max_num_models_per_replica=config.max_adapters_per_replica),
            )
            self._adapter_sync = asyncio.get_running_loop().create_task(self._sync_adapters_forever())
        logger.info("model %s ready in %.1f s (pid %d): %s", config.name, self._startup["start_s"], os.getpid(),
                    {k: round(v, 2) for k, v in self._startup.items()})
        self._self_warming = None
        if warm_from is not None:
            self._self_warming = asyncio.get_running_loop().create_task(self._warm_from_ingress(warm_from))

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
        if config.routing.policy == "prefix_affinity":
            from ray.serve.config import RequestRouterConfig

            from deployments.routing import ROUTER_CLASS

            options["request_router_config"] = RequestRouterConfig(
                request_router_class=ROUTER_CLASS,
                request_router_kwargs={"imbalanced_threshold": config.routing.imbalanced_threshold},
            )
        if config.autoscaling_config is not None:
            options["autoscaling_config"] = config.autoscaling_config.model_dump(exclude_none=True)
        else:
            options["num_replicas"] = config.num_replicas
        return options

    # Every request method takes `adapter`: the registered adapter the request's model name resolved to, whose
    # model id is also the request's multiplexed model id. None is the base model.

    async def generate_sql(
        self,
        request: SqlGenerateRequest,
        context: SchemaContext,
        sent_at: float,
        adapter: RegisteredAdapter | None = None,
    ) -> SqlGenerateResponse:
        """`context` is resolved by the ingress: the schema, and where the SQL may run when it is to run."""
        config = await self._take(sent_at, adapter)
        if self._engine.capabilities.table_qa:  # SPACE-T: a structured query over the tables, not a prompt
            answer = await table_qa.generate_sql(self._engine, config, request, context, queue_ms=_since_ms(sent_at))
        else:
            answer = await generate_sql(
                self._engine,
                config,
                request,
                context,
                pipeline=self._pipeline,
                queue_ms=_since_ms(sent_at),
                grammar_for=_grammar_for if self._engine.capabilities.grammar else None,
                adapter=_adapter_id(adapter),
            )
        self._telemetry.record_sql(_adapter_id(adapter), answer)
        return answer

    async def chat(self, request: ChatCompletionRequest, sent_at: float, adapter: RegisteredAdapter | None = None):
        config = await self._take(sent_at, adapter)
        response = await openai_serving.chat_completion(self._engine, config, request, adapter=_adapter_id(adapter))
        self._record_usage(adapter, response.usage)
        return response

    async def complete(self, request: CompletionRequest, sent_at: float, adapter: RegisteredAdapter | None = None):
        config = await self._take(sent_at, adapter)
        response = await openai_serving.completion(self._engine, config, request, adapter=_adapter_id(adapter))
        self._record_usage(adapter, response.usage)
        return response

    async def stream_chat(
        self, request: ChatCompletionRequest, sent_at: float, adapter: RegisteredAdapter | None = None
    ) -> AsyncIterator[str | UsageInfo]:
        config = await self._take(sent_at, adapter)
        stream = openai_serving.chat_completion_stream(self._engine, config, request, adapter=_adapter_id(adapter))
        async for item in self._timed_stream(stream, adapter):
            yield item

    async def stream_complete(
        self, request: CompletionRequest, sent_at: float, adapter: RegisteredAdapter | None = None
    ) -> AsyncIterator[str | UsageInfo]:
        config = await self._take(sent_at, adapter)
        stream = openai_serving.completion_stream(self._engine, config, request, adapter=_adapter_id(adapter))
        async for item in self._timed_stream(stream, adapter):
            yield item

    async def _take(self, sent_at: float, adapter: RegisteredAdapter | None) -> ModelConfig:
        """A request arrives: count it and its wait since the ingress sent it; the config to serve it with."""
        self._requests_served += 1
        self._telemetry.record_queue(_adapter_id(adapter), _since_ms(sent_at) / 1000)
        return await self._serving_config(adapter)

    def _record_usage(self, adapter: RegisteredAdapter | None, usage: UsageInfo | None) -> None:
        if usage is not None:
            self._telemetry.record_tokens(_adapter_id(adapter), prompt=usage.prompt_tokens, completion=usage.completion_tokens)

    async def _timed_stream(self, stream: AsyncIterator[Any], adapter: RegisteredAdapter | None) -> AsyncIterator[str | UsageInfo]:
        started, first = time.perf_counter(), True
        async for chunk in stream:
            if isinstance(chunk, UsageInfo):
                self._record_usage(adapter, chunk)
            elif first and _carries_text(chunk):
                self._telemetry.record_first_token(_adapter_id(adapter), time.perf_counter() - started)
                first = False
            yield _stream_item(chunk)

    async def _warm_from_ingress(self, ingress_name: str) -> None:
        """Ask the ingress for the databases it warms at start and prefill each here. Serve routes the ingress's own
        warm-up calls to one replica; this is how every other replica, including ones started later, gets there."""
        from ray import serve

        app = serve.get_replica_context().app_name
        deadline = time.monotonic() + WARM_SOURCE_WAIT_S
        while True:
            try:
                contexts = await serve.get_deployment_handle(ingress_name, app).warm_up_contexts.remote()
                break
            except Exception as e:  # the ingress not deployed or not ready yet
                if time.monotonic() > deadline:
                    logger.warning("warm-up: gave up asking %s which databases to warm: %s", ingress_name, e)
                    return
                await asyncio.sleep(2.0)
        for context in contexts:
            if (context.database or "") in self._warmed:  # the ingress's own call got here first
                continue
            try:
                logger.info("warm-up (this replica): %s", await self.warm_up(context))
            except Exception:
                logger.exception("warm-up of %s on this replica failed", context.database)

    async def warm_up(self, context: SchemaContext) -> dict[str, Any]:
        """Prefill the prompt prefix of questions on `context`'s database (at start: from the ingress, and from
        the replica itself)."""
        if self._engine.capabilities.table_qa:  # SPACE-T: the database's rows read and indexed instead
            elapsed_ms = await table_qa.warm_up(self._engine, context)
        else:
            elapsed_ms = await warm_prefix(
                self._engine, context, model=model_profile(self._config), settings=self._pipeline,
                context_length=self._engine.capabilities.context_length,
            )
        self._warmed[context.database or ""] = round(elapsed_ms, 1)
        return {"model": self._config.name, "database": context.database, "ms": round(elapsed_ms, 1), "pid": os.getpid()}

    # ---- adapters ------------------------------------------------------------------------------

    async def load_adapter(self, adapter: RegisteredAdapter) -> dict[str, Any]:
        """Load `adapter` here now (at registration), so a bad one is refused before any user asks for it."""
        loaded = await self._ensure_adapter(adapter)
        return {"model_id": adapter.model_id, "load_ms": round(loaded.load_ms, 1), "pid": os.getpid()}

    async def _serving_config(self, adapter: RegisteredAdapter | None) -> ModelConfig:
        if adapter is None:
            return self._config
        await self._ensure_adapter(adapter)
        # Answers name the adapter, and its prompts use the template it was registered with.
        return self._config.model_copy(update={"name": adapter.model_id, "prompt_template": adapter.prompt_template})

    async def _ensure_adapter(self, adapter: RegisteredAdapter):
        if self._adapters is None:
            raise AdapterNotSupported(
                f"model {self._config.name!r} cannot serve adapters ({adapter.name!r} asked for): its engine "
                "does not load LoRA adapters"
            )
        return await self._adapters.ensure(adapter)

    async def _sync_adapters_forever(self) -> None:
        while True:
            await asyncio.sleep(ADAPTER_SYNC_PERIOD_S)
            try:
                listed = await self._catalog.revisions.remote(self._config.name)
                dropped = await self._adapters.sync(listed)
                if dropped:
                    logger.info("adapters no longer registered, unloaded: %s", dropped)
            except Exception:  # the catalogue restarting must not end the loop
                logger.exception("adapter sync with the catalogue failed; retrying")

    async def check_health(self) -> None:
        """Serve's controller calls this periodically; raising marks the replica unhealthy."""
        await self._engine.check_health()

    def stats(self) -> dict[str, Any]:
        """This replica's own counters: which model it is and how many requests it served."""
        return {
            "model": self._config.name,
            "requests_served": self._requests_served,
            "pid": os.getpid(),
            "adapters": self._adapters.loaded() if self._adapters is not None else [],
            "warmed": dict(self._warmed),
            "startup": {k: round(v, 3) for k, v in self._startup.items()},
            "started_at": self._started_at,
        }


def _grammar_for(schema, dialect: str) -> str:
    from text2sql.grammar import cached_sql_grammar

    return cached_sql_grammar(schema, dialect)


def _adapter_id(adapter: RegisteredAdapter | None) -> str | None:
    """The name the engine knows the adapter by."""
    return adapter.model_id if adapter is not None else None


def _since_ms(sent_at: float) -> float:
    return max(0.0, (time.time() - sent_at) * 1000)


def _stream_item(chunk: Any) -> str | UsageInfo:
    """Chunks cross to the ingress as their JSON text, ready for SSE; the usage stays an object for its metrics."""
    return chunk if isinstance(chunk, UsageInfo) else chunk.model_dump_json(exclude_none=True)


def _carries_text(chunk: Any) -> bool:
    """A chunk with generated text (a chat stream opens with an empty role-only chunk, sent before any token)."""
    for choice in getattr(chunk, "choices", None) or []:
        delta = getattr(choice, "delta", None)
        if (delta.content if delta is not None else getattr(choice, "text", None)):
            return True
    return False
