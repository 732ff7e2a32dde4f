"""Table question answering (SPACE-T): tables with their rows, the structured query, and the engine interface."""

from text2sql.table_qa.engine import (
    GenerationNotSupported,
    TableExportPolicy,
    TableQaAnswer,
    TableQaEngine,
    TablesTooWide,
)
from text2sql.table_qa.query import NotATableQuery, StructuredQuery, query_from_sql, render_sql
from text2sql.table_qa.tables import QaColumn, QaTable, QaTables, column_kind, qa_tables

__all__ = [
    "GenerationNotSupported",
    "NotATableQuery",
    "QaColumn",
    "QaTable",
    "QaTables",
    "StructuredQuery",
    "TableExportPolicy",
    "TableQaAnswer",
    "TableQaEngine",
    "TablesTooWide",
    "column_kind",
    "qa_tables",
    "query_from_sql",
    "render_sql",
]
