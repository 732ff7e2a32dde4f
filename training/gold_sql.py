"""Spider's gold SQL as a model should learn to write it.

Spider's answers are SQLite's loose dialect: a fifth of the train split's queries quote strings in double quotes
(`WHERE name = "English"`), which SQLite reads as a string only because no column has that name, and most pad
operators with two spaces. A model fine-tuned on them writes the same on PostgreSQL, where a double-quoted word is a
column: the shipped adapter lost 5 points on sql-eval's PostgreSQL set that way. Here such a word becomes a
single-quoted literal and the query is written out by sqlglot (one space, upper-case keywords); the caller keeps the
result only when it returns the same rows as the original.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from text2sql.schema import DatabaseSchema


def standard_sql(sql: str, schema: DatabaseSchema, *, dialect: str = "sqlite") -> str | None:
    """`sql` with every double-quoted word that names no table, column or alias as a string literal, as sqlglot
    writes it; None when sqlglot cannot read it."""
    try:
        statements = sqlglot.parse(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return None
    if len(statements) != 1 or statements[0] is None:
        return None
    tree = statements[0]
    names = _names(tree, schema)
    for column in list(tree.find_all(exp.Column)):
        identifier = column.this
        if (
            isinstance(identifier, exp.Identifier)
            and identifier.quoted
            and not column.table
            and identifier.name.lower() not in names
        ):
            column.replace(exp.Literal.string(identifier.name))
    try:
        return tree.sql(dialect=dialect)
    except sqlglot.errors.SqlglotError:
        return None


def _names(tree: exp.Expression, schema: DatabaseSchema) -> set[str]:
    names = {table.name.lower() for table in schema.tables}
    names |= {column.name.lower() for table in schema.tables for column in table.columns}
    names |= {alias.alias.lower() for alias in tree.find_all(exp.Alias) if alias.alias}
    names |= {alias.name.lower() for alias in tree.find_all(exp.TableAlias) if alias.name}
    return names
