"""The ingress deployment: HTTP routes, model routing by name, limits, health and metrics.

Routes stay thin: parse (pydantic), check limits, pick the model's handle, await it. Exceptions
go to `deployments/errors.py`, the one place that maps them to HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from ray import serve
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from deployments.adapters.catalog import AdapterSpec, RegisteredAdapter
from deployments.auth import ANONYMOUS, KeyChecker
from deployments.config import AppConfig
from deployments.database_accounts import DatabaseAccounts
from deployments.errors import (
    AdapterUnusable,
    ApiError,
    Forbidden,
    ModelNotFound,
    PayloadTooLarge,
    UnsafeSql,
    UpstreamTimeout,
)
from deployments.health import HealthMonitor, read_serve_statuses
from deployments.http_errors import (
    as_api_error,
    error_response,
    exception_to_response,
    install_error_handlers,
)
from deployments.metrics import IngressMetrics
from deployments.protocol.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    ModelCard,
    ModelList,
    UsageInfo,
)
from deployments.protocol.sql import SchemaRefreshRequest, SqlGenerateRequest, SqlGenerateResponse
from deployments.schema_resolver import SchemaResolver
from deployments.telemetry import IngressTelemetry
from text2sql.pipeline.engine import EngineError
from text2sql.pipeline.inputs import SchemaContext
from text2sql.pipeline.verdict import is_unsafe

logger = logging.getLogger(__name__)

INGRESS_DEPLOYMENT_NAME = "Text2SQLIngress"
_END_OF_STREAM = object()

app = FastAPI(
    title="text2sql-serve",
    description="Text-to-SQL and OpenAI-compatible APIs over models served on Ray Serve.",
    version="0.1.0",
)
install_error_handlers(app)


# The playground may only run its own files: no inline script, no third-party origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
UI_DIR = Path(__file__).resolve().parent / "ui" / "dist"


@app.middleware("http")
async def _guard_and_count(request: Request, call_next) -> Response:
    """Body size and API keys before anything is parsed; security headers and metrics after."""
    ingress: Ingress | None = getattr(app.state, "ingress", None)
    if ingress is None:
        return await call_next(request)
    started = time.perf_counter()
    path = _app_path(request)
    key_name = ANONYMOUS
    declared = request.headers.get("content-length")
    try:
        key_name = ingress.keys.check(path, request.headers.get("authorization"))
        request.state.key_name = key_name
        if declared and declared.isdigit() and int(declared) > ingress.config.limits.max_request_bytes:
            raise PayloadTooLarge(
                f"request body of {declared} bytes exceeds {ingress.config.limits.max_request_bytes}"
            )
    except ApiError as e:
        response: Response = exception_to_response(e)
    else:
        response = await call_next(request)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    route = request.scope.get("route")
    endpoint = getattr(route, "path", None) or ("/ui" if path.startswith("/ui") else "unmatched")
    model = getattr(request.state, "model", None) or "none"
    seconds = time.perf_counter() - started
    ingress.metrics.record_request(model=model, endpoint=endpoint, status=response.status_code, seconds=seconds)
    ingress.metrics.record_key(key=key_name, endpoint=endpoint, status=response.status_code)
    base_model = getattr(request.state, "base_model", None)
    if base_model is not None:  # requests routed to a model; /health, /metrics and the playground's files are not
        ingress.telemetry.record_request(
            model=base_model, adapter=request.state.adapter, status=response.status_code, seconds=seconds
        )
    return response


def _app_path(request: Request) -> str:
    """The path inside the app: under a route prefix (/t2s/v1/models) the key check must still see /v1/."""
    path, root = request.url.path, request.scope.get("root_path", "")
    return path[len(root):] or "/" if root and path.startswith(root) else path


# The playground's built files ship inside the package; serving them needs no Node.js.
app.mount("/ui", StaticFiles(directory=UI_DIR, html=True, check_dir=False), name="ui")


class Ingress:
    def __init__(self, config: AppConfig, model_handles: dict[str, Any], catalog: Any | None = None) -> None:
        """`catalog` is the AdapterCatalog deployment's handle; without it no adapter can be served."""
        self.config = config
        self._handles = model_handles
        self._catalog = catalog
        self._created = int(time.time())
        self.metrics = IngressMetrics()
        self.telemetry = IngressTelemetry()
        self.schemas = SchemaResolver(config.databases, config.pipeline)
        self.accounts = DatabaseAccounts(config.databases)
        self.accounts.check_in_background()
        self.keys = KeyChecker(config.auth)
        self.health = HealthMonitor(
            functools.partial(read_serve_statuses, serve, serve.get_replica_context().app_name, config.model_names),
            scales_to_zero={m.name: bool(m.autoscaling_config and m.autoscaling_config.min_replicas == 0) for m in config.models},
            interval_s=config.ingress.health_check_interval_s,
            stale_after_s=config.ingress.health_stale_after_s,
        )
        self.health.start()
        self._warming = threading.Event()
        self._warm_contexts: list[SchemaContext] = []
        self._warm_contexts_known = threading.Event()
        if config.databases:
            threading.Thread(target=self._warm_up_all, name="warm-up", daemon=True).start()
        else:
            self._warming.set()
            self._warm_contexts_known.set()
        app.state.ingress = self

    @staticmethod
    def get_deployment_options(config: AppConfig) -> dict[str, Any]:
        return {
            "name": INGRESS_DEPLOYMENT_NAME,
            "num_replicas": config.ingress.num_replicas,
            "max_ongoing_requests": config.ingress.max_ongoing_requests,
            # 0 CPUs by default: on a 2-core node the models need both cores to schedule.
            "ray_actor_options": {"num_cpus": config.ingress.num_cpus},
        }

    def _warm_up_all(self) -> None:
        """Introspect every database, then have each model prefill the first `warm_up_databases` ones' prompt
        prefix, all models at once. This reaches one replica per model; every replica also asks for the same
        databases when it starts (`warm_up_contexts`), which covers the others and the ones autoscaling adds. A
        database or model that fails is logged and skipped, never blocks readiness."""
        try:
            for position, database in enumerate(self.config.databases):
                try:
                    context = self.schemas.resolve(SqlGenerateRequest(question="warm-up", database=database))
                except Exception as e:
                    logger.warning("warm-up: database %s skipped: %s", database, e)
                    continue
                if position < self.config.ingress.warm_up_databases:
                    self._warm_contexts.append(context)
            self._warm_contexts_known.set()
            # A model that may scale to zero is not woken for this: its replicas warm themselves when they start.
            handles = {model: handle for model, handle in self._handles.items() if not self.health.may_scale_to_zero(model)}
            for context in self._warm_contexts:
                # Every model at once: each prefills on its own replica, so readiness waits for the slowest,
                # not for their sum.
                pending = {model: handle.warm_up.remote(context) for model, handle in handles.items()}
                for model, response in pending.items():
                    try:
                        done = response.result(timeout_s=self.config.ingress.request_timeout_s)
                        logger.info("warm-up: %s", done)
                    except Exception as e:
                        logger.warning("warm-up: model %s on %s failed: %s", model, context.database, e)
        finally:
            self._warm_contexts_known.set()
            self._warming.set()

    async def warm_up_contexts(self) -> list[SchemaContext]:
        """The databases every model replica prefills when it starts (called by the replicas, not over HTTP)."""
        await asyncio.to_thread(self._warm_contexts_known.wait, self.config.ingress.request_timeout_s)
        return list(self._warm_contexts)

    # ---- routing -------------------------------------------------------------------------------

    async def _route(self, request: Request, requested: str | None) -> tuple[str, str, Any, RegisteredAdapter | None]:
        """(served name, base model, handle, adapter): an adapter's requests go to its base model's replicas,
        tagged with its multiplexed model id so that replicas already holding it are preferred."""
        name = requested or self.config.default_model
        handle = self._handles.get(name)
        adapter = None
        if handle is None and self._catalog is not None:
            adapter = await _unwrapped(self._catalog.resolve.remote(name))
            if adapter is not None:
                handle = self._handles[adapter.base].options(multiplexed_model_id=adapter.model_id)
        if handle is None:
            raise ModelNotFound(
                f"model {name!r} does not exist; available models: {', '.join(self.config.model_names)} "
                "and the adapters GET /v1/models lists",
                param="model",
            )
        request.state.model = name
        request.state.base_model, request.state.adapter = (adapter.base, adapter.model_id) if adapter else (name, None)
        base = adapter.base if adapter else name
        if self.health.scaled_to_zero(base):
            logger.info("cold start: model %s has no running replica (scaled to zero); this request waits for one", base)
        return name, adapter.base if adapter else name, handle, adapter

    async def _call(self, method: Any, *args: Any, adapter: RegisteredAdapter | None = None) -> Any:
        response = method.remote(*args, time.time(), adapter=adapter)
        try:
            return await asyncio.wait_for(response, self.config.ingress.request_timeout_s)
        except asyncio.TimeoutError as e:
            response.cancel()  # stop the model's work too, not only our wait for it
            raise self._timeout() from e
        except asyncio.CancelledError:
            response.cancel()  # the client went away
            raise
        except (BackPressureError, DeploymentUnavailableError) as e:
            # Serve installs its own plain-text handlers for these; answer in our JSON instead.
            raise as_api_error(e) from e

    def _timeout(self) -> UpstreamTimeout:
        return UpstreamTimeout(f"the model did not answer within {self.config.ingress.request_timeout_s:.0f} s")

    @staticmethod
    def _check_size(field: str, size: int, limit: int) -> None:
        if size > limit:
            raise PayloadTooLarge(f"{field} has {size} characters; the limit is {limit}", param=field)

    def _check_max_tokens(self, name: str, body: Any) -> None:
        """Refuse a token budget over the model's cap here, before any replica works on it."""
        limit = next(m.max_tokens_limit for m in self.config.models if m.name == name)
        for field in ("max_tokens", "max_completion_tokens"):
            requested = getattr(body, field, None)
            if requested is not None and requested > limit:
                raise ApiError(
                    f"{field} is {requested}, above the limit of {limit} for model {name!r} (max_tokens_limit)",
                    param=field,
                )

    @staticmethod
    def _check_not_blank(field: str, texts: list[str]) -> None:
        # An empty prompt leaves llama.cpp nothing to continue from.
        if not any(text.strip() for text in texts):
            raise ApiError(f"{field} is empty or only whitespace; there is nothing to answer", param=field)

    def _record_usage(self, model: str, usage: Any) -> None:
        self.metrics.record_tokens(
            model=model, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
        )

    # ---- Text-to-SQL API -----------------------------------------------------------------------

    @app.post("/v1/sql/generate", response_model=SqlGenerateResponse)
    async def sql_generate(self, request: Request, body: SqlGenerateRequest) -> SqlGenerateResponse:
        limits = self.config.limits
        schema = body.schema_ if isinstance(body.schema_, str) or body.schema_ is None else body.schema_.model_dump_json()
        self._check_size("question", len(body.question), limits.max_question_chars)
        self._check_size("schema", len(schema or ""), limits.max_schema_chars)
        self._check_size("evidence", len(body.evidence or ""), limits.max_evidence_chars)
        history = sum(len(turn.question) + len(turn.sql) for turn in body.history)
        self._check_size("history", history, limits.max_history_chars)
        self._check_unvalidated_execution(request, body)
        started = time.perf_counter()
        name, base, handle, adapter = await self._route(request, body.model)
        self._check_max_tokens(base, body)
        if body.execute and body.database is not None:
            # Refused before any model works on it when the account can do more than read.
            await asyncio.to_thread(self.accounts.ensure_may_execute, body.database)
        # Introspection may hit the database (on a cache miss): keep the event loop free.
        context = await asyncio.to_thread(self.schemas.resolve, body)
        result: SqlGenerateResponse = await self._call(handle.generate_sql, body, context, adapter=adapter)
        result.timings.total_ms = (time.perf_counter() - started) * 1000
        if not result.success and result.attempts and is_unsafe(result.attempts[-1].code):
            self.metrics.sql_results.labels(model=name, outcome="unsafe").inc()
            raise UnsafeSql(
                f"refused: the model's SQL does something this server does not run ({result.attempts[-1].error}), "
                "and nothing was run. Rephrase the question as something to look up.",
                param="question",
            )
        self._record_usage(name, result.usage)
        self.metrics.sql_results.labels(model=name, outcome="success" if result.success else "failure").inc()
        return result

    def _check_unvalidated_execution(self, request: Request, body: SqlGenerateRequest) -> None:
        """Running unchecked model output leaves only the database account as a guard: admins only."""
        if body.validate_sql or not body.execute:
            return
        if self.keys.enabled:
            if not self.keys.is_admin(getattr(request.state, "key_name", ANONYMOUS)):
                raise Forbidden(
                    "'validate': false with 'execute': true needs an admin key: unchecked SQL would run on the database",
                    param="validate",
                )
        elif not self.config.auth.allow_unvalidated_execution:
            raise Forbidden(
                "'validate': false with 'execute': true is refused: unchecked SQL would run on the database. "
                "Turn on API keys and use an admin key, or set auth.allow_unvalidated_execution in the config.",
                param="validate",
            )

    # ---- databases -----------------------------------------------------------------------------

    @app.get("/v1/databases")
    async def list_databases(self) -> JSONResponse:
        # Right after start the background check may still be running: wait for it rather than show "unchecked".
        await asyncio.to_thread(self.accounts.check_unchecked)
        databases = [
            {
                "name": name,
                "dialect": self.schemas.config(name).dialect(),
                "description": self.schemas.config(name).description,
                **self.accounts.listing(name),
            }
            for name in self.schemas.names
        ]
        return JSONResponse({"object": "list", "data": databases})

    @app.get("/v1/databases/{name}/schema")
    async def database_schema(self, name: str) -> JSONResponse:
        schema = await asyncio.to_thread(self.schemas.schema, name)
        return JSONResponse(schema.model_dump(mode="json"))

    @app.post("/v1/admin/schema/refresh")
    async def refresh_schemas(self, body: SchemaRefreshRequest) -> JSONResponse:
        """Drop cached introspection, for one database or all; the next request re-reads the schema."""
        refreshed = self.schemas.refresh(body.database)
        return JSONResponse({"refreshed": refreshed})

    # ---- OpenAI API ----------------------------------------------------------------------------

    @app.post("/v1/chat/completions")
    async def chat_completions(self, request: Request, body: ChatCompletionRequest) -> Response:
        total = sum(len(m.content) for m in body.messages)
        self._check_size("messages", total, self.config.limits.max_prompt_chars)
        self._check_not_blank("messages", [m.content for m in body.messages])
        return await self._openai(request, body, method="chat", stream_method="stream_chat")

    @app.post("/v1/completions")
    async def completions(self, request: Request, body: CompletionRequest) -> Response:
        self._check_size("prompt", len(body.prompt), self.config.limits.max_prompt_chars)
        self._check_not_blank("prompt", [body.prompt])
        return await self._openai(request, body, method="complete", stream_method="stream_complete")

    async def _openai(self, request: Request, body: Any, *, method: str, stream_method: str) -> Response:
        name, base, handle, adapter = await self._route(request, body.model)
        self._check_max_tokens(base, body)
        if body.stream:
            return await self._stream(name, getattr(handle.options(stream=True), stream_method), body, adapter)
        result = await self._call(getattr(handle, method), body, adapter=adapter)
        self._record_usage(name, result.usage)
        return JSONResponse(result.model_dump(exclude_none=True))

    async def _stream(self, name: str, method: Any, body: Any, adapter: RegisteredAdapter | None) -> Response:
        generator = method.remote(body, time.time(), adapter=adapter)
        # The whole stream, not just its first chunk, has request_timeout_s.
        deadline = time.monotonic() + self.config.ingress.request_timeout_s
        # Wait for the first chunk before answering 200, so a full queue or a failed model is a
        # proper error status rather than an error inside an already-started stream.
        try:
            first = await self._next_chunk(generator, deadline)
        except (BackPressureError, DeploymentUnavailableError) as e:
            raise as_api_error(e) from e

        async def events() -> AsyncIterator[str]:
            finished = False
            chunk = first
            try:
                while chunk is not _END_OF_STREAM:
                    if isinstance(chunk, UsageInfo):  # the model's accounting, not part of the client's stream
                        self._record_usage(name, chunk)
                    else:
                        yield f"data: {chunk}\n\n"
                    chunk = await self._next_chunk(generator, deadline)
                finished = True
            except Exception as e:  # the stream has started: report in-band, as OpenAI does
                error = exception_to_response(e)
                yield f"data: {error.body.decode()}\n\n"
            finally:
                if not finished:
                    generator.cancel()  # the client left or the model failed: stop generating
            yield "data: [DONE]\n\n"

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    async def _next_chunk(self, generator: Any, deadline: float) -> Any:
        try:
            return await asyncio.wait_for(generator.__anext__(), max(0.0, deadline - time.monotonic()))
        except StopAsyncIteration:
            return _END_OF_STREAM
        except asyncio.TimeoutError as e:
            generator.cancel()  # stop the model's work too, not only our wait for it
            raise self._timeout() from e
        except asyncio.CancelledError:
            generator.cancel()  # the client went away
            raise

    @app.get("/v1/models", response_model=ModelList)
    async def list_models(self) -> ModelList:
        """Base models, then adapters, each with its base (`parent`) and prompt template."""
        cards = [
            ModelCard(id=m.name, created=self._created, prompt_template=m.prompt_template, backend=m.backend)
            for m in self.config.models
        ]
        for adapter in await self._adapters():
            cards.append(
                ModelCard(
                    id=adapter.model_id, created=adapter.created, parent=adapter.base,
                    prompt_template=adapter.prompt_template, adapter=adapter.name,
                )
            )
        return ModelList(data=cards)

    # ---- adapters (admin) ----------------------------------------------------------------------

    @app.get("/v1/adapters")
    async def list_adapters(self) -> JSONResponse:
        adapters = await self._adapters()
        return JSONResponse({"object": "list", "data": [a.model_dump(mode="json") for a in adapters]})

    @app.post("/v1/adapters", status_code=201)
    async def register_adapter(self, body: AdapterSpec) -> JSONResponse:
        """Register, then load on one replica of the base model: an adapter its engine cannot load is refused
        (and forgotten) now, not when the first user asks for it."""
        catalog = self._require_catalog()
        adapter: RegisteredAdapter = await _unwrapped(catalog.register.remote(body))
        handle = self._handles[adapter.base].options(multiplexed_model_id=adapter.model_id)
        try:
            loaded = await asyncio.wait_for(
                _unwrapped(handle.load_adapter.remote(adapter)), self.config.ingress.request_timeout_s
            )
        except BaseException as e:
            await _unwrapped(catalog.remove.remote(adapter.name))
            if isinstance(e, EngineError):
                raise AdapterUnusable(
                    f"adapter {adapter.name!r} could not be loaded on {adapter.base!r}: {e}", param="path"
                ) from e
            if isinstance(e, asyncio.TimeoutError):
                raise self._timeout() from e
            raise
        body_out = {**adapter.model_dump(mode="json"), "load_ms": loaded["load_ms"]}
        return JSONResponse(body_out, status_code=201)

    @app.delete("/v1/adapters/{name}")
    async def delete_adapter(self, name: str) -> JSONResponse:
        """Forget the adapter at once (new requests get a 404); every replica holding it unloads it within
        the replicas' sync period."""
        adapter: RegisteredAdapter = await _unwrapped(self._require_catalog().remove.remote(name))
        return JSONResponse({"deleted": adapter.model_id, "object": "adapter"})

    def _require_catalog(self) -> Any:
        if self._catalog is None:
            raise ApiError("this app was built without an adapter catalogue")
        return self._catalog

    async def _adapters(self) -> list[RegisteredAdapter]:
        return await _unwrapped(self._catalog.listing.remote()) if self._catalog is not None else []

    # ---- operations ----------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def root(self, request: Request) -> RedirectResponse:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/ui/")

    @app.get("/health")
    async def health(self) -> JSONResponse:
        """200 when every model has a running replica (or may scale to zero) and the warm-up is done. Answered
        from the background monitor's last reading: it never waits on Serve's controller or a model."""
        report = self.health.report(warming=not self._warming.is_set())
        if report.ready:
            return JSONResponse(report.body)
        return error_response(503, report.reason, error_type="overloaded_error", headers={"Retry-After": "5"})

    @app.get("/metrics")
    async def metrics_text(self) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)


# Serve rewrites the app's class-method routes when the class is wrapped. The wrapping must happen
# at import time: replicas import this module afresh, and a rewrite done in the builder's process
# would not reach the app object they use.
IngressASGI = serve.ingress(app)(Ingress)


async def _unwrapped(response: Any) -> Any:
    """A handle call's result; a Serve-side error is re-raised as itself, so its status and message survive."""
    try:
        return await response
    except Exception as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, ApiError | EngineError):
            raise cause from None
        raise
