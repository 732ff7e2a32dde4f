"""SQL dialects in one place: their names, how a model reads them, which one a model writes, and transpiling."""

from __future__ import annotations

import sqlglot
from sqlglot.dialects.dialect import Dialects
from sqlglot.errors import ErrorLevel, SqlglotError

SUPPORTED_DIALECTS: tuple[str, ...] = tuple(sorted(d.value for d in Dialects if d.value))
# What an answer is written in when neither the request nor a database says.
DEFAULT_DIALECT = "sqlite"

# Names the model understands better than sqlglot's dialect ids.
DIALECT_DISPLAY_NAMES = {
    "sqlite": "SQLite",
    "postgres": "PostgreSQL",
    "mysql": "MySQL",
    "duckdb": "DuckDB",
    "bigquery": "BigQuery",
    "snowflake": "Snowflake",
    "tsql": "T-SQL (SQL Server)",
    "oracle": "Oracle",
    "trino": "Trino",
    "spark": "Spark SQL",
}

# SQLAlchemy backend name -> sqlglot dialect, for the databases this project can run queries on.
DIALECT_OF_BACKEND = {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def check_dialect(dialect: str) -> str:
    """The dialect name, lower-cased, or a ValueError listing the supported ones."""
    name = dialect.strip().lower()
    if name not in SUPPORTED_DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of: {', '.join(SUPPORTED_DIALECTS)}")
    return name


def dialect_display_name(dialect: str) -> str:
    return DIALECT_DISPLAY_NAMES.get(dialect.lower(), dialect)


def generation_dialect(*, native: str | None, database: str | None, requested: str) -> str:
    """What the model writes: its family's own dialect when it has one (it was trained on it), else the
    database's (so execution runs what the model wrote), else the requested one; sqlglot transpiles the rest."""
    return native or database or requested


def transpile_sql(sql: str, *, source: str, target: str) -> str:
    """One statement from `source` dialect to `target`; ValueError naming the problem when that fails."""
    source, target = check_dialect(source), check_dialect(target)
    try:
        statements = sqlglot.transpile(
            sql, read=source, write=target, pretty=False, unsupported_level=ErrorLevel.RAISE
        )
    except SqlglotError as e:
        raise ValueError(f"cannot transpile from {source} to {target}: {e}") from e
    except RecursionError as e:
        raise ValueError(f"cannot transpile from {source} to {target}: the SQL is nested too deeply") from e
    statements = [s for s in statements if s.strip()]
    if len(statements) != 1:
        raise ValueError(
            f"cannot transpile from {source} to {target}: expected one statement, got {len(statements)}"
        )
    return statements[0]


def transpiled(sql: str, source: str, target: str) -> str:
    """`sql` in `target`, untouched when the dialects are the same."""
    return sql if source == target else transpile_sql(sql, source=source, target=target)
