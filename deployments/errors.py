"""Every error the app answers with, in one place: its HTTP status and OpenAI error type, no web framework.

`deployments/http_errors.py` turns these (and engine, validation and Serve errors) into responses. Messages
are written for the client: no tracebacks, no internal paths, no credentials.
"""

from __future__ import annotations


class ApiError(Exception):
    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}


class ModelNotFound(ApiError):
    status_code = 404
    error_type = "not_found_error"


class PayloadTooLarge(ApiError):
    status_code = 413
    error_type = "payload_too_large"


class ServiceOverloaded(ApiError):
    status_code = 503
    error_type = "overloaded_error"


class UnsafeSql(ApiError):
    """Every attempt produced SQL that would write, run code or read files: refused, nothing ran."""

    status_code = 422
    error_type = "unsafe_sql"


class PrivilegedAccount(ApiError):
    """`execute` named a database whose account can do more than read, and its config does not allow that."""

    status_code = 403
    error_type = "privileged_account"


class AccountUnchecked(ApiError):
    """`execute` named a database whose account could not be checked yet (unreachable): retry later."""

    status_code = 503
    error_type = "database_unavailable"


class UpstreamTimeout(ApiError):
    status_code = 504
    error_type = "timeout_error"


class Unauthorized(ApiError):
    status_code = 401
    error_type = "authentication_error"


class Forbidden(ApiError):
    status_code = 403
    error_type = "permission_error"


class UnknownDatabase(ModelNotFound):
    """404, like an unknown model."""


class DatabaseUnavailable(ApiError):
    status_code = 503
    error_type = "database_unavailable"


class TableQaUnsupported(ApiError):
    """A request a table-QA model (SPACE-T) cannot answer as asked: no tables, or history it cannot follow up."""


class AdapterConflict(ApiError):
    """An adapter registration that clashes: its name is taken, or its prompt template is not its base model's."""

    status_code = 409
    error_type = "conflict_error"


class AdapterUnusable(ApiError):
    """A registered adapter that its base model's engine could not load (bad files, wrong base, no adapter support)."""

    status_code = 422
    error_type = "invalid_request_error"
