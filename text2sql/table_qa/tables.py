"""The tables a table-QA model (SPACE-T) answers over: columns with a coarse kind, and the rows it links values in.

Built from the resolved schema, so a table-QA engine sees the same tables and columns as every other engine.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import Field, JsonValue

from text2sql.schema import DatabaseSchema, Table
from text2sql.strict import StrictModel

ColumnKind = Literal["text", "number", "date"]

_NUMBER_TYPES = re.compile(r"int|real|float|double|decimal|numeric|number|money|serial", re.IGNORECASE)
_DATE_TYPES = re.compile(r"date|time", re.IGNORECASE)


class QaColumn(StrictModel):
    name: str = Field(description="Column name as the database spells it.")
    kind: ColumnKind = Field(description="SPACE-T's column type: number columns compare as numbers.")
    primary_key: bool = Field(default=False, description="Part of the table's primary key.")


class QaTable(StrictModel):
    name: str = Field(description="Table name as a query names it (schema-qualified when exposed so).")
    columns: list[QaColumn] = Field(min_length=1, description="Columns in declaration order: a query's indices.")
    rows: list[list[JsonValue]] = Field(default_factory=list, description="Cell values the model links the question to.")


class QaTables(StrictModel):
    key: str = Field(description="Names this exact content (tables and rows), so an engine may cache its index of it.")
    tables: list[QaTable] = Field(min_length=1, description="Every table the question may be about.")

    def table(self, name: str) -> QaTable | None:
        lowered = name.lower()
        return next((t for t in self.tables if t.name.lower() == lowered), None)


def column_kind(sql_type: str) -> ColumnKind:
    """The declared type, as the kind SPACE-T knows: number, date, or (anything else) text."""
    if _NUMBER_TYPES.search(sql_type):
        return "number"
    if _DATE_TYPES.search(sql_type):
        return "date"
    return "text"


def qa_table(table: Table, rows: list[list[JsonValue]] | None = None) -> QaTable:
    columns = [QaColumn(name=c.name, kind=column_kind(c.type), primary_key=c.primary_key) for c in table.columns]
    return QaTable(name=table.name, columns=columns, rows=rows or [])


def qa_tables(schema: DatabaseSchema, rows: dict[str, list[list[JsonValue]]], *, label: str) -> QaTables:
    """`rows` by table name (a table without an entry has none); the key is `label` plus a hash of the content."""
    tables = [qa_table(t, rows.get(t.name)) for t in schema.tables]
    digest = hashlib.sha256()
    for table in tables:
        digest.update(table.model_dump_json().encode())
    safe_label = re.sub(r"[^A-Za-z0-9._-]+", "_", label)[:64] or "tables"
    return QaTables(key=f"{safe_label}-{digest.hexdigest()[:16]}", tables=tables)
