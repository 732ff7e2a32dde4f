"""Named databases from the app config: where they are, how they are reached, and their limits.

Credentials stay out of responses and logs: a URL can come from an environment variable
(`url_env`), and only the URL's dialect ever leaves this module.
"""

from __future__ import annotations

import os

from pydantic import Field, PositiveInt, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from text2sql.dialects import DIALECT_OF_BACKEND
from text2sql.pipeline.budget import DEFAULT_MAX_RESULT_BYTES
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.schema.relationships import parse_relationship
from text2sql.strict import StrictModel

BUILTIN_DATABASES = ("builtin:chinook",)


class DatabaseConfig(StrictModel):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL (sqlite:///path, postgresql+psycopg://..., mysql+pymysql://...) "
        "or 'builtin:chinook' for the bundled sample database.",
    )
    url_env: str | None = Field(default=None, description="Environment variable that holds the URL instead.")
    description: str | None = Field(default=None, description="Shown in GET /v1/databases.")
    max_rows: PositiveInt = Field(default=1000, description="Row cap per query; more is reported as truncated.")
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="Wall-clock limit per query.")
    max_result_bytes: PositiveInt = Field(
        default=DEFAULT_MAX_RESULT_BYTES,
        description="Result size per request, as JSON, shared by all of its candidates; fetching stops there "
        "and the answer says truncated.",
    )
    sample_values: int = Field(default=3, ge=0, le=20, description="Sample values per column shown to the model.")
    schema_ttl_s: float | None = Field(
        default=300.0, ge=0, description="Re-introspect after this long; null caches until refreshed."
    )
    include_tables: list[str] | None = Field(default=None, description="Only these tables; null means all.")
    value_index_max_per_column: int = Field(
        default=1000, ge=0, le=100_000,
        description="Distinct values per text column read for value linking (when on); 0 reads none.",
    )
    examples: str | None = Field(
        default=None,
        description="This database's own question/SQL example store (JSON or JSON lines of {question, sql}); "
        "overrides pipeline.example_store for questions on it.",
    )
    relationships: list[str] = Field(
        default_factory=list,
        description="Join keys the database does not declare, as 'table.column -> table.column' (the referencing "
        "column first), e.g. ['orders.customer_id -> customers.id']: shown to the model as foreign keys and used "
        "to complete a forgotten join. Checked against the schema when it is read.",
    )
    infer_relationships: bool = Field(
        default=True,
        description="When the database declares no foreign keys and `relationships` names none, read join keys from "
        "the data when the schema is read: the same key-like name in two tables (`writes.aid`, `author.aid`) or "
        "`<table>_id` against that table's `id`, where the referenced column is unique and holds at least 90% of the "
        "referencing column's values (read-only COUNT queries, at most 30 s per database). They are shown and used as "
        "`relationships` are.",
    )
    expose_schemas: list[str] = Field(
        default_factory=list,
        description="Further schemas (MySQL: databases) whose tables queries may name, qualified, e.g. "
        "['sales'] or a system catalogue such as ['information_schema']; introspected like the default one. "
        "Every other qualifier, and every system catalogue, is refused.",
    )
    allow_privileged_account: bool = Field(
        default=False,
        description="Execute even when the database account can do more than read (PostgreSQL superuser or "
        "pg_read_server_files, MySQL FILE or write grants, ...): logged and shown as a warning in GET /v1/databases. "
        "By default such a database is refused for execution; see docs/read-only-accounts.md.",
    )

    @field_validator("relationships")
    @classmethod
    def _relationships_parse(cls, relationships: list[str]) -> list[str]:
        for text in relationships:
            parse_relationship(text)
        return relationships

    @model_validator(mode="after")
    def _one_url_source(self) -> DatabaseConfig:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of 'url' or 'url_env'")
        if self.url is not None and self.url not in BUILTIN_DATABASES:
            try:
                backend = make_url(self.url).get_backend_name()
            except ArgumentError as e:
                raise ValueError("'url' is not a valid SQLAlchemy URL") from e  # never echo it: it may hold a password
            if backend not in DIALECT_OF_BACKEND:
                raise ValueError(f"database backend {backend!r} is not supported; use sqlite, postgresql or mysql")
        return self

    def resolve_url(self) -> str:
        """The real URL; builds the bundled sample database on first use."""
        if self.url_env is not None:
            value = os.environ.get(self.url_env)
            if not value:
                raise DatabaseConfigError(f"environment variable {self.url_env} is not set")
            return value
        if self.url == "builtin:chinook":
            from text2sql.chinook import chinook_sqlite_path

            return f"sqlite:///{chinook_sqlite_path()}"
        return self.url  # type: ignore[return-value]

    def execution_target(self, *, max_rows: int | None = None) -> ExecutionTarget:
        """Where and within which limits one request's SQL runs; a request may lower the row cap, not raise it."""
        return ExecutionTarget(
            url=self.resolve_url(),
            dialect=self.dialect(),
            max_rows=min(max_rows or self.max_rows, self.max_rows),
            timeout_s=self.timeout_s,
            max_bytes=self.max_result_bytes,
        )

    def dialect(self) -> str:
        if self.url in BUILTIN_DATABASES:
            return "sqlite"
        backend = make_url(self.resolve_url()).get_backend_name()
        return DIALECT_OF_BACKEND[backend]


class DatabaseConfigError(RuntimeError):
    """A configured database cannot be reached as configured; the message names no secret."""
