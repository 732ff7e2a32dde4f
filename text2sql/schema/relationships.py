"""Join keys a database does not declare. Warehouses and dumps often carry no FOREIGN KEY constraints (sql-eval's
PostgreSQL databases have none), so neither the prompt nor join completion can see how tables join. A
relationship written `orders.customer_id -> customers.id` (the referencing column first) is added to the
schema as a foreign key, checked against the tables and columns that exist."""

from __future__ import annotations

import re

from text2sql.schema.errors import SchemaError
from text2sql.schema.model import DatabaseSchema, ForeignKey, Table

# table.column -> table.column; a table name may hold a schema qualifier (`sales.orders.id`): the column is
# the last part.
RELATIONSHIP = re.compile(
    r"^\s*(?P<table>[^\s>]+)\.(?P<column>[^.\s>]+)\s*->\s*(?P<ref_table>[^\s>]+)\.(?P<ref_column>[^.\s>]+)\s*$"
)


def parse_relationship(text: str) -> tuple[str, str, str, str]:
    """(table, column, referenced table, referenced column) of `table.column -> table.column`."""
    match = RELATIONSHIP.match(text)
    if match is None:
        raise ValueError(f"relationship {text!r} is not of the form 'table.column -> table.column'")
    return match["table"], match["column"], match["ref_table"], match["ref_column"]


def with_relationships(schema: DatabaseSchema, relationships: list[str]) -> DatabaseSchema:
    """`schema` with each relationship added as a foreign key of its referencing table (once: a key the database
    declares already is not repeated). SchemaError names a relationship whose table or column does not exist."""
    return with_join_keys(schema, [(*parse_relationship(text), text) for text in relationships])


def with_join_keys(schema: DatabaseSchema, keys: list[tuple[str, str, str, str, str]]) -> DatabaseSchema:
    """As with_relationships, from (table, column, referenced table, referenced column, description) tuples, so
    names that the `a.b -> c.d` form cannot spell (a space, a dot) can be keys too."""
    tables = {table.name.lower(): table for table in schema.tables}
    for table_name, column, ref_table_name, ref_column, text in keys:
        table = _column_of(tables, table_name, column, text)
        ref_table = _column_of(tables, ref_table_name, ref_column, text)
        key = ForeignKey(
            columns=[table.column(column).name], ref_table=ref_table.name, ref_columns=[ref_table.column(ref_column).name]
        )
        if key not in table.foreign_keys:
            tables[table.name.lower()] = table = table.model_copy(update={"foreign_keys": [*table.foreign_keys, key]})
    return schema.model_copy(update={"tables": [tables[t.name.lower()] for t in schema.tables]})


def _column_of(tables: dict[str, Table], table_name: str, column: str, text: str) -> Table:
    table = tables.get(table_name.lower())
    if table is None:
        raise SchemaError(f"relationship {text!r}: the database has no table {table_name!r}")
    if table.column(column) is None:
        raise SchemaError(f"relationship {text!r}: table {table.name!r} has no column {column!r}")
    return table
