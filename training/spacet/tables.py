"""The tables a SPACE-T record is asked over, as the served model would see them.

A configured database goes through serving's own path for `backend: modelscope_tableqa`: `SchemaResolver`
introspects it, `TableExports` reads each table's rows read-only (at most `max_rows_per_table`), and
`qa_tables` gives the columns their SPACE-T kinds in declaration order, so a column's index here is its index
when served. A table given inline in a record is used as it is.
"""

from __future__ import annotations

import hashlib
import logging

from deployments.databases import DatabaseConfig
from deployments.errors import ApiError
from deployments.protocol.sql import SqlGenerateRequest
from deployments.schema_resolver import SchemaResolver
from deployments.serving.table_exports import TableExports
from text2sql.table_qa import QaTable, QaTables, TableExportPolicy

logger = logging.getLogger(__name__)

# One job reads each database once.
_READ_ONCE_S = 7 * 24 * 3600.0


class TablesUnavailable(ValueError):
    """A database a record names cannot be used; the message says why (for a `path:line:` error)."""


class TableSource:
    def __init__(self, databases: dict[str, DatabaseConfig], *, max_rows_per_table: int) -> None:
        self._databases = databases
        self._resolver = SchemaResolver(databases)
        self._exports = TableExports()
        self._policy = TableExportPolicy(max_rows_per_table=max_rows_per_table, refresh_s=_READ_ONCE_S)
        # database name -> its tables, or why they cannot be read (asked once, not once per line)
        self._read: dict[str, QaTables | str] = {}

    def database(self, name: str) -> QaTables:
        if name not in self._databases:
            configured = ", ".join(sorted(self._databases)) or "none are configured"
            raise TablesUnavailable(f"unknown database {name!r}; configured databases: {configured}")
        if name not in self._read:
            self._read[name] = self._export(name)
        tables = self._read[name]
        if isinstance(tables, str):
            raise TablesUnavailable(tables)
        return tables

    def dialect(self, name: str) -> str:
        return self._databases[name].dialect()

    def _export(self, name: str) -> QaTables | str:
        # The request serving would build for a question on this database, without the prompt-only extras.
        request = SqlGenerateRequest(question="-", database=name, value_linking=False, examples=0)
        try:
            context = self._resolver.resolve(request)
        except ApiError as e:
            return e.message
        export = self._exports.export(context, self._policy)
        for note in export.notes:
            logger.warning("database %s: %s", name, note)
        return export.tables


def inline_tables(table: QaTable) -> QaTables:
    """One inline table, keyed by its content (its table files are written once per key)."""
    digest = hashlib.sha256(table.model_dump_json().encode()).hexdigest()[:16]
    return QaTables(key=f"inline-{digest}", tables=[table])
