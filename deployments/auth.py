"""API keys: user keys for `/v1/*`, separate admin keys for `/v1/admin/*` and `/v1/adapters`.

Keys come from the config or, better, from environment variables named in it. They are compared in
constant time, counted in the metrics by their configured name, and never logged or echoed.
With no keys configured the API stays open, as for a local single-user setup.
"""

from __future__ import annotations

import hmac
import os

from pydantic import Field, model_validator

from deployments.errors import Forbidden, Unauthorized
from text2sql.strict import StrictModel

ANONYMOUS = "anonymous"


class ApiKeyConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]+$", description="Shown in metrics instead of the key.")
    key: str | None = Field(default=None, min_length=16, description="The key itself (prefer key_env).")
    key_env: str | None = Field(default=None, description="Environment variable that holds the key.")

    @model_validator(mode="after")
    def _one_source(self) -> ApiKeyConfig:
        if (self.key is None) == (self.key_env is None):
            raise ValueError(f"API key {self.name!r}: give exactly one of 'key' or 'key_env'")
        return self

    def resolve(self) -> str:
        if self.key is not None:
            return self.key
        value = os.environ.get(self.key_env or "", "")
        if len(value) < 16:
            raise AuthConfigError(
                f"API key {self.name!r}: environment variable {self.key_env} is unset or shorter than 16 characters"
            )
        return value


class AuthSettings(StrictModel):
    api_keys: list[ApiKeyConfig] = Field(
        default_factory=list, description="User keys; when any is set, every /v1/* call needs one."
    )
    admin_keys: list[ApiKeyConfig] = Field(
        default_factory=list, description="Admin keys for /v1/admin/* and /v1/adapters; separate from the user keys."
    )

    allow_unvalidated_execution: bool = Field(
        default=False,
        description="With no keys configured, let requests run SQL with 'validate': false; with keys, only admin keys may.",
    )

    @model_validator(mode="after")
    def _names_unique(self) -> AuthSettings:
        names = [k.name for k in [*self.api_keys, *self.admin_keys]]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"API key names must be unique; repeated: {repeated}")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.api_keys or self.admin_keys)


class AuthConfigError(RuntimeError):
    """A configured key cannot be read; names the variable, never a value."""


class KeyChecker:
    def __init__(self, settings: AuthSettings) -> None:
        self._users = [(k.name, k.resolve().encode()) for k in settings.api_keys]
        self._admins = [(k.name, k.resolve().encode()) for k in settings.admin_keys]
        self.enabled = settings.enabled

    def is_admin(self, key_name: str) -> bool:
        return any(name == key_name for name, _ in self._admins)

    def check(self, path: str, authorization: str | None) -> str:
        """The key's name for a request to `path`; raises 401/403 when the key does not open it."""
        if not self.enabled or not path.startswith("/v1/"):
            return ANONYMOUS
        presented = _bearer(authorization)
        admin = path.startswith(ADMIN_PATHS)
        if presented is None:
            raise Unauthorized(
                "this API needs a key: send 'Authorization: Bearer <key>'", headers={"WWW-Authenticate": "Bearer"}
            )
        if admin:
            name = _match(presented, self._admins)
            if name is None:
                if _match(presented, self._users) is not None:
                    raise Forbidden("this endpoint needs an admin key; user keys cannot use it")
                raise Unauthorized("the key is not valid", headers={"WWW-Authenticate": "Bearer"})
            return name
        name = _match(presented, self._users) or _match(presented, self._admins)
        if name is None:
            raise Unauthorized("the key is not valid", headers={"WWW-Authenticate": "Bearer"})
        return name


# Adapters change what every user is served: registering, listing and deleting them takes an admin key.
ADMIN_PATHS = ("/v1/admin/", "/v1/adapters")


def _bearer(authorization: str | None) -> bytes | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip().encode()


def _match(presented: bytes, keys: list[tuple[str, bytes]]) -> str | None:
    found = None
    for name, key in keys:  # compare against every key: the time taken says nothing about which matched
        if hmac.compare_digest(presented, key):
            found = name
    return found
