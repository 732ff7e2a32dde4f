"""Read a DatabaseSchema from a live database through SQLAlchemy's inspector, with a few sample values.

Everything here only reads: SQLite files are opened read-only (`mode=ro`), PostgreSQL and MySQL
sessions are set to read-only transactions with a statement timeout, and sample queries are plain
SELECTs with a LIMIT. Messages and logs show the URL with every secret masked (`text2sql.db_urls`: the
password, secret query parameters such as ``?password=`` or ``?sslpassword=``, secrets inside ``options``).
"""

from __future__ import annotations

import datetime
import decimal
import logging
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Inspector
from sqlalchemy.engine.reflection import ObjectKind

from text2sql.db_urls import masked_url, parse_url, scrub
from text2sql.messages import first_line
from text2sql.read_only import SqliteFileMissing, create_engine, read_only_statements
from text2sql.schema.errors import SchemaError
from text2sql.schema.model import Column, DatabaseSchema, ForeignKey, SampleValue, Table

logger = logging.getLogger(__name__)

# Sample values come from the first rows of each table, so a huge table costs no more than a small one.
SCANNED_ROWS = 200
MAX_SAMPLE_CHARS = 40
CONNECT_TIMEOUT_S = 10
STATEMENT_TIMEOUT_S = 10


def introspect(
    url: str,
    *,
    sample_values: int = 3,
    include_tables: list[str] | None = None,
    schema_name: str | None = None,
) -> DatabaseSchema:
    """Tables and views of the database at `url` (a SQLAlchemy URL), with keys, comments and samples.

    `sample_values` distinct non-null values are kept per column, taken from the first `SCANNED_ROWS`
    rows of each table (not views, whose LIMIT may not bound the work; not binary columns). Strings
    are cut to `MAX_SAMPLE_CHARS`, decimals become floats, dates ISO strings. `include_tables` limits
    the result to those names (case-insensitive); `schema_name` reads a schema other than the default.
    Raises SchemaError when the URL is invalid, the database unreachable, or it has no tables.
    """
    if sample_values < 0:
        raise ValueError(f"sample_values must be >= 0, got {sample_values!r}")
    sa_url = _parse_url(url)
    shown_url = masked_url(sa_url)
    engine = _create_engine(sa_url, shown_url)
    try:
        try:
            connection = engine.connect()
        except sa.exc.SQLAlchemyError as e:
            raise SchemaError(f"cannot connect to database {shown_url}: {_reason(e, sa_url)}") from None
        with connection:
            try:
                _restrict_session(connection)
                # The one schema (PostgreSQL) or database (MySQL) a query may name; SQLite's is "main".
                default_schema = schema_name or connection.dialect.default_schema_name
                tables = _reflect(
                    sa.inspect(connection), schema_name=schema_name, include_tables=include_tables
                )
                if sample_values:
                    tables = [
                        _with_samples(connection, r, schema_name=schema_name, count=sample_values)
                        for r in tables
                    ]
            except sa.exc.SQLAlchemyError as e:
                raise SchemaError(f"cannot introspect database {shown_url}: {_reason(e, sa_url)}") from None
    finally:
        engine.dispose()
    if not tables:
        where = f" in schema {schema_name!r}" if schema_name else ""
        raise SchemaError(f"database {shown_url} has no tables{where}")
    logger.info("introspected %s: %d tables and views", shown_url, len(tables))
    return DatabaseSchema(
        tables=[r.table for r in tables],
        name=_database_name(sa_url),
        qualifiers=[default_schema] if default_schema else [],
    )


# --------------------------------------------------------------------------------------------------
# Connecting


def _parse_url(url: str) -> URL:
    try:
        return parse_url(url)
    except ValueError:
        # The message must not echo the URL: it may hold a password.
        raise SchemaError(
            "not a valid SQLAlchemy database URL (expected e.g. postgresql://user@host/db)"
        ) from None


def _create_engine(url: URL, shown_url: str) -> sa.Engine:
    try:
        # Not pooled: one short-lived connection, closed when we are done, never reused by anyone else.
        return create_engine(url, pooled=False, timeout_s=CONNECT_TIMEOUT_S)
    except SqliteFileMissing as e:
        raise SchemaError(str(e)) from None
    except (sa.exc.SQLAlchemyError, ImportError) as e:
        raise SchemaError(f"cannot use database {shown_url}: {_reason(e, url)}") from None


def _restrict_session(connection: Connection) -> None:
    """Read-only transactions and a statement timeout for this session: a second line of defence, as
    every statement we send is already a catalog query or a SELECT with a LIMIT. (SQLite connections are
    read-only from the start: `read_only.connect_sqlite`.)"""
    dialect = connection.dialect
    if dialect.name == "postgresql":
        statements = read_only_statements("postgresql", timeout_s=STATEMENT_TIMEOUT_S, scope="session")
    elif dialect.name in ("mysql", "mariadb"):
        backend = "mariadb" if getattr(dialect, "is_mariadb", False) else "mysql"
        statements = read_only_statements(backend, timeout_s=STATEMENT_TIMEOUT_S, scope="session")
    else:
        return
    for statement in statements:
        try:
            connection.exec_driver_sql(statement)
            connection.commit()  # PostgreSQL undoes a SET on rollback
        except sa.exc.DBAPIError as e:
            connection.rollback()
            logger.warning("could not restrict the session (%s): %s", statement, first_line(e))


# --------------------------------------------------------------------------------------------------
# Reflection


@dataclass(frozen=True)
class _Reflected:
    table: Table
    is_view: bool
    column_types: dict[str, sa.types.TypeEngine[Any]]  # decide which columns can be sampled, and how


def _reflect(
    inspector: Inspector, *, schema_name: str | None, include_tables: list[str] | None
) -> list[_Reflected]:
    """Every table, then every view, each sorted by name: backends list them in different orders
    (PostgreSQL in catalog order), and the prompt must not change between runs."""
    table_names = sorted(inspector.get_table_names(schema=schema_name))
    view_names = sorted(v for v in _view_names(inspector, schema_name) if v not in table_names)
    names = _selected(table_names + view_names, include_tables)
    if not names:
        return []

    def by_name(result: dict[tuple[str | None, str], Any]) -> dict[str, Any]:
        return {key[1]: value for key, value in result.items()}

    options: dict[str, Any] = {"schema": schema_name, "filter_names": names, "kind": ObjectKind.ANY}
    columns = by_name(inspector.get_multi_columns(**options))
    primary_keys = by_name(inspector.get_multi_pk_constraint(**options))
    foreign_keys = by_name(inspector.get_multi_foreign_keys(**options))
    try:
        comments = by_name(inspector.get_multi_table_comment(**options))
    except NotImplementedError:  # SQLite has no comments
        comments = {}

    views = set(view_names)
    tables = []
    for name in names:
        reflected_columns = columns.get(name) or []
        if not reflected_columns:
            logger.warning("skipping %r: no columns could be read", name)
            continue
        primary = set((primary_keys.get(name) or {}).get("constrained_columns") or [])
        table = Table(
            name=name,
            columns=[_column(c, primary, inspector.dialect) for c in reflected_columns],
            foreign_keys=[
                ForeignKey(
                    columns=list(fk["constrained_columns"]),
                    ref_table=fk["referred_table"],
                    ref_columns=list(fk["referred_columns"]),
                )
                for fk in foreign_keys.get(name) or []
                if fk.get("constrained_columns") and fk.get("referred_columns")
            ],
            comment=_text((comments.get(name) or {}).get("text")),
        )
        column_types = {c["name"]: c["type"] for c in reflected_columns}
        tables.append(_Reflected(table=table, is_view=name in views, column_types=column_types))
    return tables


def _view_names(inspector: Inspector, schema_name: str | None) -> list[str]:
    try:
        return inspector.get_view_names(schema=schema_name)
    except NotImplementedError:
        return []


def _selected(names: list[str], include_tables: list[str] | None) -> list[str]:
    if include_tables is None:
        return names
    by_lower = {n.lower(): n for n in names}
    missing = [n for n in include_tables if n.lower() not in by_lower]
    if missing:
        available = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
        raise SchemaError(
            f"include_tables names tables that do not exist: {missing!r}; there are: {available}"
        )
    wanted = {n.lower() for n in include_tables}
    return [n for n in names if n.lower() in wanted]


def _column(reflected: dict[str, Any], primary: set[str], dialect: sa.Dialect) -> Column:
    name = reflected["name"]
    is_primary = name in primary
    return Column(
        name=name,
        type=_type_text(reflected["type"], dialect),
        primary_key=is_primary,
        nullable=bool(reflected.get("nullable", True)) and not is_primary,
        comment=_text(reflected.get("comment")),
    )


def _type_text(column_type: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> str:
    if isinstance(column_type, sa.types.NullType):  # a type SQLAlchemy did not recognise
        return ""
    try:
        return column_type.compile(dialect=dialect)
    except sa.exc.CompileError:
        return type(column_type).__name__.upper()


def _text(value: str | None) -> str | None:
    stripped = (value or "").strip()
    return stripped or None


# --------------------------------------------------------------------------------------------------
# Sample values


# Types whose values make short, faithful samples; binary, JSON, arrays, geometry and the like do not.
_SAMPLED_TYPES = (sa.String, sa.Integer, sa.Numeric, sa.Date, sa.DateTime, sa.Time, sa.Boolean, sa.Uuid)


def _with_samples(
    connection: Connection, reflected: _Reflected, *, schema_name: str | None, count: int
) -> _Reflected:
    """The table with up to `count` distinct values per column from its first SCANNED_ROWS rows. Views
    are left alone: a LIMIT does not bound the work of a view that aggregates or sorts."""
    table = reflected.table
    if reflected.is_view:
        return reflected
    dialect_name = connection.dialect.name
    sampled: list[tuple[str, sa.ColumnElement[Any]]] = []
    for column in table.columns:
        expression = _sample_expression(column.name, reflected.column_types[column.name], dialect_name)
        if expression is not None:
            sampled.append((column.name, expression))
    if not sampled:
        return reflected
    query = (
        sa.select(*[expression for _, expression in sampled])
        .select_from(sa.table(table.name, schema=schema_name))
        .limit(SCANNED_ROWS)
    )
    try:
        rows = connection.execute(query).fetchall()
        connection.rollback()  # end the read transaction; nothing was written
    except sa.exc.DBAPIError as e:
        connection.rollback()  # PostgreSQL refuses further statements in a failed transaction
        logger.warning("no sample values for table %r: %s", table.name, first_line(e))
        return reflected
    samples = {name: _distinct(row[i] for row in rows)[:count] for i, (name, _) in enumerate(sampled)}
    columns = [c.model_copy(update={"samples": samples.get(c.name, [])}) for c in table.columns]
    return replace(reflected, table=table.model_copy(update={"columns": columns}))


def _sample_expression(
    name: str, column_type: sa.types.TypeEngine[Any], dialect_name: str
) -> sa.ColumnElement[Any] | None:
    if not isinstance(column_type, _SAMPLED_TYPES):
        return None
    column = sa.column(name)
    if isinstance(column_type, sa.String) and not isinstance(column_type, sa.Enum):
        # Only a prefix crosses the network, so a table of long documents costs no more than any other.
        substring = sa.func.substring if dialect_name == "mssql" else sa.func.substr
        return substring(column, 1, 2 * MAX_SAMPLE_CHARS).label(name)
    return column


def _distinct(values: Iterable[Any]) -> list[SampleValue]:
    seen: list[SampleValue] = []
    for value in values:
        safe = _json_safe_sample(value)
        if safe is not None and safe not in seen:
            seen.append(safe)
    return seen


def _json_safe_sample(value: Any) -> SampleValue:
    """A database value as a short JSON-safe sample, or None when it makes no useful sample."""
    if value is None or isinstance(value, (bytes, bytearray, memoryview)):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, (float, decimal.Decimal)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, (str, uuid.UUID)):
        text = " ".join(str(value).split())
        if not text:
            return None
        return text if len(text) <= MAX_SAMPLE_CHARS else text[:MAX_SAMPLE_CHARS] + "…"
    return None  # lists, dicts, geometry objects...: no short faithful text


# --------------------------------------------------------------------------------------------------
# Messages without secrets


def _reason(error: BaseException, url: URL) -> str:
    """The driver's own message (first line), with every secret of the URL masked should it appear."""
    original = getattr(error, "orig", None) or error
    return first_line(scrub(str(original), url)) or type(original).__name__


def _database_name(url: URL) -> str | None:
    database = url.database
    if not database:
        return None
    if url.get_backend_name() == "sqlite":
        if database == ":memory:":
            return None
        return Path(database.removeprefix("file:").split("?")[0]).stem or None
    return database
