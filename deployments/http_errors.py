"""The one place exceptions become HTTP responses.

Bodies are OpenAI-shaped (`{"error": {"message", "type", "param", "code"}}`) on every endpoint, so
the `openai` client raises its usual typed errors. Messages are sanitised: no tracebacks, no
internal paths, no credentials; the full exception goes to the log with a request id.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from deployments.errors import ApiError, ServiceOverloaded
from text2sql.pipeline.engine import (
    AdapterInvalid,
    AdapterNotLoaded,
    AdapterNotSupported,
    EmptyPrompt,
    EngineError,
    GenerationTimeout,
    PromptTooLong,
)
from text2sql.table_qa import GenerationNotSupported, TablesTooWide

logger = logging.getLogger(__name__)


# Engine errors whose message is meant for the client: (status, type, param). Any other is a 500.
_ENGINE_ERRORS: dict[type[EngineError], tuple[int, str, str | None]] = {
    PromptTooLong: (400, "invalid_request_error", "messages"),
    EmptyPrompt: (400, "invalid_request_error", "prompt"),
    GenerationTimeout: (504, "timeout_error", None),
    AdapterNotSupported: (400, "invalid_request_error", "model"),
    AdapterInvalid: (422, "invalid_request_error", "model"),
    AdapterNotLoaded: (404, "not_found_error", "model"),
    GenerationNotSupported: (400, "invalid_request_error", "model"),
    TablesTooWide: (400, "invalid_request_error", "database"),
}


def as_api_error(exc: Exception) -> ApiError:
    """Serve's own overload signals, as our 503s with a Retry-After header."""
    from ray.serve.exceptions import BackPressureError

    if isinstance(exc, BackPressureError):
        retry_after = max(1, round(exc.retry_after_s or 1))
        return ServiceOverloaded(
            "the model's request queue is full; retry later", headers={"Retry-After": str(retry_after)}
        )
    return ServiceOverloaded("the model has no replica ready; retry shortly", headers={"Retry-After": "5"})


def error_response(
    status_code: int,
    message: str,
    *,
    error_type: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": error_type, "param": param, "code": status_code}}
    return JSONResponse(body, status_code=status_code, headers=headers)


def exception_to_response(exc: BaseException) -> JSONResponse:
    """Map any exception raised while serving a request to its HTTP response."""
    if isinstance(exc, ApiError):
        return error_response(
            exc.status_code, exc.message, error_type=exc.error_type, param=exc.param, headers=exc.headers
        )
    if isinstance(exc, RequestValidationError):
        return _validation_error_response(exc)
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI's wording when the bytes do not decode (e.g. not UTF-8).
            return error_response(400, "the request body is not valid JSON in UTF-8", error_type="invalid_request_error")
        return error_response(exc.status_code, str(exc.detail), error_type="invalid_request_error")

    from ray.exceptions import ActorDiedError, ActorUnavailableError
    from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

    if isinstance(exc, BackPressureError | DeploymentUnavailableError):
        return exception_to_response(as_api_error(exc))
    for engine_error, (status, error_type, param) in _ENGINE_ERRORS.items():
        if isinstance(exc, engine_error):
            # Ray re-raises the replica's exception as a subclass of its cause; keep only our message.
            message = str(getattr(exc, "cause", None) or exc).strip().splitlines()[-1]
            return error_response(status, message, error_type=error_type, param=param)

    if isinstance(exc, ActorDiedError | ActorUnavailableError):
        logger.warning("model replica unavailable: %r", exc)
        return error_response(
            503, "the model replica is unavailable; retry shortly", error_type="overloaded_error",
            headers={"Retry-After": "5"},
        )
    request_id = uuid.uuid4().hex[:12]
    # The cause may hold a traceback or paths: log it whole, tell the client only its kind.
    cause = getattr(exc, "cause", None) or exc
    logger.error("request %s failed: %s", request_id, exc, exc_info=exc)
    return error_response(
        500,
        f"the model failed to generate ({type(cause).__name__}); request id {request_id}",
        error_type="server_error",
    )


def _validation_error_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "the request body is not valid JSON", error_type="invalid_request_error")
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    field = ".".join(location) or "body"
    message = "; ".join(_describe(e) for e in errors[:5])
    return error_response(422, message, error_type="invalid_request_error", param=field)


def _describe(error: dict) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
    text = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "missing":
        return f"field '{location}' is required"
    if error.get("type") == "extra_forbidden":
        return f"field '{location}' is not supported"
    return f"field '{location}': {text}"


def install_error_handlers(app: FastAPI) -> None:
    from ray.exceptions import RayError
    from ray.serve.exceptions import RayServeException

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return exception_to_response(exc)

    # Specific classes are answered by Starlette's exception middleware and end there. A handler
    # for plain Exception runs in the outermost middleware, which re-raises after answering, and
    # Serve would then answer a second time in its own words (e.g. for backpressure).
    for exc_class in (ApiError, RequestValidationError, StarletteHTTPException, RayError, RayServeException, EngineError):
        app.add_exception_handler(exc_class, handle)
    app.add_exception_handler(Exception, handle)
