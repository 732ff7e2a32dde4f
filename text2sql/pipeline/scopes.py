"""What the identifier fixers and join rewrites read off one query level (a sqlglot scope): its tables by alias,
its select aliases, and how to spell a schema name back into the query; and `rewritten`, which parses a statement,
applies one of them and writes it again."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, build_scope, traverse_scope

from text2sql.schema import DatabaseSchema, Table

logger = logging.getLogger(__name__)


def tables_by_alias(scope: Scope, schema: DatabaseSchema) -> dict[str, Table] | None:
    """The level's sources keyed by lower-cased alias; None when one is not a schema table (a subquery, a CTE, a
    table function), whose columns cannot be checked here."""
    tables: dict[str, Table] = {}
    for alias, source in scope.sources.items():
        if not isinstance(source, exp.Table) or not isinstance(source.this, exp.Identifier):
            return None
        table = schema.table(source.name)
        if table is None:
            return None
        tables[alias.lower()] = table
    return tables


def answer_level(tree: exp.Expression, schema: DatabaseSchema) -> tuple[Scope, dict[str, Table]] | None:
    """The level whose columns are the answer's (the outermost SELECT) and its tables by alias; None for a set
    operation, whose branches must keep their columns alike, or when a source is not a schema table."""
    if not isinstance(tree, exp.Select):
        return None
    scope = build_scope(tree)
    tables = tables_by_alias(scope, schema) if scope is not None else None
    return (scope, tables) if tables else None


def owning_alias(column: exp.Column, tables: dict[str, Table]) -> str | None:
    """The lower-cased alias of the level's table a column reads: its qualifier, or for an unqualified name the one
    table that has it; None when unclear (no such table, or several)."""
    if column.table:
        return column.table.lower() if column.table.lower() in tables else None
    holders = [alias for alias, table in tables.items() if table.column(column.name) is not None]
    return holders[0] if len(holders) == 1 else None


def own_columns(scope: Scope) -> list[exp.Column]:
    """The columns written at this level: sqlglot also lists those of an `IN (SELECT ...)` inside it."""
    return [c for c in scope.columns if c.find_ancestor(exp.Select) is scope.expression]


def select_aliases(scope: Scope) -> set[str]:
    expression = scope.expression
    if not isinstance(expression, exp.Select):
        return set()
    return {s.alias.lower() for s in expression.selects if isinstance(s, exp.Alias) and s.alias}


def spelled_alias(scope: Scope, lowered: str) -> str:
    """The alias as the query spells it (the lookups here are lower-cased)."""
    return next((alias for alias in scope.sources if alias.lower() == lowered), lowered)


def rewritten(
    sql: str, dialect: str, change: Callable[[exp.Expression], list]
) -> tuple[str, list] | None:
    """`sql` parsed, changed in place by `change` (which returns what it changed), and written again; None when
    nothing changed or the statement could not be read or changed (the caller keeps it as it was)."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
        changes = change(tree)
    except (SqlglotError, RecursionError, ValueError, KeyError, AttributeError, TypeError) as e:
        logger.debug("%s left as it was: %s", getattr(change, "__name__", "a rewrite"), e)
        return None
    return (tree.sql(dialect=dialect, comments=False), changes) if changes else None


def rewritten_per_level(
    sql: str, dialect: str, change_level: Callable[[Scope], list]
) -> tuple[str, list] | None:
    """`rewritten`, with `change_level` applied to each SELECT level of the statement (innermost first)."""

    def change(tree: exp.Expression) -> list:
        levels = [scope for scope in traverse_scope(tree) if isinstance(scope.expression, exp.Select)]
        return [note for scope in levels for note in change_level(scope)]

    return rewritten(sql, dialect, change)


def ordered_by(select: exp.Select, column: exp.Column) -> bool:
    """The level's ORDER BY reads a column of that name (a DISTINCT level must keep showing it for PostgreSQL)."""
    order = select.args.get("order")
    return order is not None and any(found.name.lower() == column.name.lower() for found in order.find_all(exp.Column))


def identifier(name: str) -> exp.Identifier:
    """A schema name as an identifier, quoted only when it must be."""
    return exp.to_identifier(name, quoted=not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name))
