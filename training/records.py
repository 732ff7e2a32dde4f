"""Training records: one JSON line each, checked line by line before any training starts.

A line is `{"question", "schema" | "database", "sql", "evidence"?, "history"?, "dialect"?}`, the fields of
`POST /v1/sql/generate` plus the gold `sql`. Loading checks every line the way serving would see it: a named
database is introspected by the serving `SchemaResolver`, DDL is parsed by the same parser, and the gold SQL
must pass the project's own validator against that schema. A bad line is never skipped: `DataError` lists
each one as `path:line: what is wrong`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from deployments.databases import DatabaseConfig
from deployments.digests import file_sha256
from deployments.errors import DatabaseUnavailable
from deployments.schema_resolver import SchemaResolver
from text2sql.dialects import DEFAULT_DIALECT, check_dialect
from text2sql.prompts import HistoryTurn
from text2sql.schema import DatabaseSchema
from text2sql.schema.ddl import parse_ddl
from text2sql.schema.errors import SchemaError
from text2sql.strict import StrictModel
from text2sql.validation import validate_sql
from training.jsonl import BadLine, read_checked_lines


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# Field types both record formats (this one, SPACE-T's) check the same way.
NonBlankText = Annotated[str, AfterValidator(_not_blank)]
DialectId = Annotated[str, AfterValidator(check_dialect)]


class TrainingRecord(StrictModel):
    question: NonBlankText = Field(description="The question in plain language.")
    schema_: DatabaseSchema | str | None = Field(
        default=None, alias="schema", description="DDL text or the structured schema; or give `database`."
    )
    database: str | None = Field(default=None, description="A configured database, introspected as serving does.")
    sql: NonBlankText = Field(description="The gold SQL, in `dialect`.")
    evidence: str | None = Field(default=None, description="Hints: business rules, value meanings.")
    history: list[HistoryTurn] = Field(
        default_factory=list, description="Earlier turns of the conversation, oldest first; the question follows up."
    )
    dialect: DialectId | None = Field(
        default=None, description="Dialect of `sql` and the history (sqlglot id); default: the database's, else sqlite."
    )

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _one_schema_source(self) -> TrainingRecord:
        if isinstance(self.schema_, str) and not self.schema_.strip():
            raise ValueError("'schema' must not be blank")
        if (self.schema_ is None) == (self.database is None):
            raise ValueError("give exactly one of 'schema' or 'database'")
        return self


def load_records(path: str | Path, *, databases: dict[str, DatabaseConfig] | None = None) -> list[TrainingRecord]:
    """Every record of the JSONL file at `path`, each checked; `DataError` when any line is bad."""
    check = _GoldCheck(databases or {})
    return read_checked_lines(path, TrainingRecord, lambda record, _where: check(record))


def data_sha256(path: str | Path) -> str:
    return file_sha256(path)


class _GoldCheck:
    """A record's schema as serving sees it (each named database introspected once), and its gold SQL
    validated against that schema in the record's dialect."""

    def __init__(self, databases: dict[str, DatabaseConfig]) -> None:
        self._databases = databases
        self._resolver = SchemaResolver(databases)
        # database name -> its schema, or why it cannot be read (asked once, not once per line)
        self._introspected: dict[str, DatabaseSchema | str] = {}

    def __call__(self, record: TrainingRecord) -> TrainingRecord:
        schema, dialect = self._schema(record)
        result = validate_sql(record.sql, dialect=dialect, schema=schema)
        if not result.valid:
            raise BadLine("gold SQL fails validation: " + "; ".join(issue.message for issue in result.errors))
        return record

    def _schema(self, record: TrainingRecord) -> tuple[DatabaseSchema, str]:
        if record.database is not None:
            return self._database_schema(record.database), record.dialect or self._databases[record.database].dialect()
        dialect = record.dialect or DEFAULT_DIALECT
        if isinstance(record.schema_, DatabaseSchema):
            return record.schema_, dialect
        try:
            # The parser and dialect serving uses, so the gold SQL is checked against the schema the prompt shows.
            return parse_ddl(record.schema_ or "", dialect=record.dialect), dialect
        except SchemaError as e:
            raise BadLine(f"schema is not DDL that parses: {e}") from None

    def _database_schema(self, name: str) -> DatabaseSchema:
        if name not in self._databases:
            configured = ", ".join(sorted(self._databases)) or "none are configured"
            raise BadLine(f"unknown database {name!r}; configured databases: {configured}")
        if name not in self._introspected:
            try:
                self._introspected[name] = self._resolver.schema(name)
            except DatabaseUnavailable as e:
                self._introspected[name] = e.message
        schema = self._introspected[name]
        if isinstance(schema, str):
            raise BadLine(schema)
        return schema
