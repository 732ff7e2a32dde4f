"""A database's tables with their rows, for a table-QA engine: read once, kept until the engine's refresh time.

Rows are read with the server's own `SELECT * FROM <table>` through the read-only execution path (the
database's read-only mode, its time limit and byte budget), at most the engine's rows per table. A table whose
rows cannot be read is still offered by its columns, with a note. A schema given inline has no rows.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from pydantic import JsonValue
from sqlglot import exp

from text2sql.execution import ExecutionError, execute_read_only
from text2sql.messages import first_line
from text2sql.pipeline.inputs import ExecutionTarget, SchemaContext
from text2sql.schema import DatabaseSchema, Table
from text2sql.table_qa import QaTables, TableExportPolicy, qa_tables

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableExport:
    tables: QaTables
    notes: list[str]


@dataclass(frozen=True)
class _Cached:
    schema_hash: str
    export: TableExport
    read_at: float


class TableExports:
    """One per model replica: the last export of each configured database."""

    def __init__(self) -> None:
        self._cached: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def export(self, context: SchemaContext, policy: TableExportPolicy) -> TableExport:
        """Blocking (it may read every table): async callers use a worker thread."""
        schema = context.schema_
        if schema is None:
            raise ValueError("a table export needs a parsed schema")
        if context.database is None or context.source is None:
            return TableExport(qa_tables(schema, {}, label="schema"), [])
        schema_hash = hashlib.sha256(schema.model_dump_json().encode()).hexdigest()
        with self._lock:  # one reader per replica: requests behind it reuse what it read
            cached = self._cached.get(context.database)
            if (
                cached is not None
                and cached.schema_hash == schema_hash
                and time.monotonic() - cached.read_at < policy.refresh_s
            ):
                return cached.export
            export = _read(context.database, schema, context.source, policy)
            self._cached[context.database] = _Cached(schema_hash, export, time.monotonic())
            return export


def _read(database: str, schema: DatabaseSchema, source: ExecutionTarget, policy: TableExportPolicy) -> TableExport:
    rows: dict[str, list[list[JsonValue]]] = {}
    notes: list[str] = []
    for table in schema.tables:
        try:
            result = execute_read_only(
                source.url,
                select_all(table, source.dialect),
                max_rows=policy.max_rows_per_table,
                timeout_s=source.timeout_s,
                max_bytes=source.max_bytes,
            )
        except ExecutionError as e:
            logger.warning("reading the rows of %s.%s failed: %s", database, table.name, e)
            notes.append(f"the rows of table {table.name} could not be read ({first_line(e)}): its values are unknown")
            continue
        rows[table.name] = result.rows
        if result.truncated:
            notes.append(f"table {table.name} has more rows than were read for value matching ({result.row_count})")
    return TableExport(qa_tables(schema, rows, label=database), notes)


def select_all(table: Table, dialect: str) -> str:
    """Every column of `table`, by name, quoted for `dialect`; `schema.table` names an exposed schema's table."""
    schema_name, _, name = table.name.rpartition(".")
    columns = [exp.column(c.name, quoted=True) for c in table.columns]
    return exp.select(*columns).from_(exp.table_(name, db=schema_name or None, quoted=True)).sql(dialect=dialect)
