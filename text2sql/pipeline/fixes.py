"""Deterministic fixes for identifier slips, tried before any re-prompt: no model call, and only when unambiguous.

- A real column on the wrong alias (`T2.weight` where T2 is Has_Pet and only Pets has `weight`): requalified
  with the one source in the same query level that has it.
- A column or table spelled with other case, quoting or separators (`PetAge` for `pet_age`, `"Song Name"` for
  `Song_Name`): renamed to the one schema name that matches after folding case and dropping non-alphanumerics.
- A long column name a letter or two off (`cause_by_ship_id`): renamed to the one nearest column, if near enough.
- A column that only a table one foreign key away has: that table joined on the key (joins.py).

A fix is kept only when the whole statement then validates; the caller re-validates.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from text2sql.pipeline.joins import complete_joins
from text2sql.pipeline.scopes import identifier, rewritten, select_aliases, spelled_alias, tables_by_alias
from text2sql.schema import DatabaseSchema, Table

# A misspelt name is fixed only when long enough that a letter or two cannot make it another word's.
NEAR_MIN_LENGTH = 8
NEAR_RATIO = 0.9


@dataclass(frozen=True)
class IdentifierFix:
    before: str
    after: str
    join: str | None = None  # the join that reached the column, when join completion added one

    def describe(self) -> str:
        return f"{self.before} -> {self.after}" + (f" ({self.join})" if self.join else "")


def fold(name: str) -> str:
    """A name with case, quoting and separators folded away: `Pet_Age`, `"pet age"` and `PetAge` are equal."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def fix_identifiers(
    sql: str, *, dialect: str, schema: DatabaseSchema, joins: bool = True
) -> tuple[str, list[IdentifierFix]] | None:
    """`sql` with its unambiguous identifier slips fixed, and what was changed; None when nothing was fixable.
    `joins` also joins the one table a missing column sits on (joins.py)."""

    def fix(tree: exp.Expression) -> list[IdentifierFix]:
        fixes = _fix_tables(tree, schema) + _fix_columns(tree, schema)
        if joins:
            fixes += [IdentifierFix(before, after, join) for before, after, join in complete_joins(tree, schema)]
        return list(dict.fromkeys(fixes))  # once per name, not per use

    return rewritten(sql, dialect, fix)


def _fix_tables(tree: exp.Expression, schema: DatabaseSchema) -> list[IdentifierFix]:
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    fixes = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier) or table.db or table.name.lower() in ctes:
            continue
        if schema.table(table.name) is not None:
            continue
        matches = [t.name for t in schema.tables if fold(t.name) == fold(table.name)]
        if len(matches) == 1:
            fixes.append(IdentifierFix(table.name, matches[0]))
            table.set("this", identifier(matches[0]))
    return fixes


def _fix_columns(tree: exp.Expression, schema: DatabaseSchema) -> list[IdentifierFix]:
    fixes: list[IdentifierFix] = []
    seen: set[int] = set()
    # A name some table has as written is not misspelt: it is left to join completion, not renamed to a near one.
    real_names = {column.name.lower() for table in schema.tables for column in table.columns}
    for scope in traverse_scope(tree):
        tables = tables_by_alias(scope, schema)
        if tables is None:
            continue  # a subquery or table function in FROM: its columns cannot be checked here
        aliases = select_aliases(scope)
        for column in scope.columns:
            if id(column) in seen or isinstance(column.this, exp.Star):
                continue
            seen.add(id(column))
            fix = _fix_column(column, scope, tables, aliases, near=column.name.lower() not in real_names)
            if fix is not None:
                fixes.append(fix)
    return fixes


def _fix_column(
    column: exp.Column, scope: Scope, tables: dict[str, Table], aliases: set[str], *, near: bool
) -> IdentifierFix | None:
    name, qualifier = column.name, column.table
    before = column.sql()
    if qualifier:
        own = tables.get(qualifier.lower())
        if own is None or own.column(name) is not None:
            return None
        exact = [alias for alias, table in tables.items() if table.column(name) is not None]
        if len(exact) == 1:
            column.set("table", exp.to_identifier(spelled_alias(scope, exact[0])))
            return IdentifierFix(before, column.sql())
        # Spelled differently: its own table first, then any one source in this query level.
        for candidates in ({qualifier.lower(): own}, tables):
            found = _folded_matches(name, candidates, near=near)
            if len(found) == 1:
                return _rename(column, spelled_alias(scope, found[0][0]), found[0][1], before=before, requalify=True)
        return None
    if name.lower() in aliases or any(t.column(name) is not None for t in tables.values()):
        return None
    found = _folded_matches(name, tables, near=near)
    if len(found) != 1:
        return None
    return _rename(column, spelled_alias(scope, found[0][0]), found[0][1], before=before, requalify=len(tables) > 1)


def _folded_matches(name: str, tables: dict[str, Table], *, near: bool) -> list[tuple[str, str]]:
    """The columns that match `name` after folding; failing that (and if `near`), the one nearest long name
    within a letter or two (`cause_by_ship_id` for `caused_by_ship_id`), when no other comes as near."""
    columns = [(alias, c.name) for alias, t in tables.items() for c in t.columns]
    exact = [(alias, real) for alias, real in columns if fold(real) == fold(name)]
    if exact or not near or len(fold(name)) < NEAR_MIN_LENGTH:
        return exact
    scored = sorted(
        ((difflib.SequenceMatcher(None, fold(name), fold(real)).ratio(), alias, real) for alias, real in columns),
        reverse=True,
    )
    if not scored or scored[0][0] < NEAR_RATIO or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return []
    return [scored[0][1:]]


def _rename(column: exp.Column, alias: str, real: str, *, before: str, requalify: bool) -> IdentifierFix:
    """`column` renamed to `real`, and qualified with `alias` (as the query spells it) when `requalify`."""
    column.set("this", identifier(real))
    if requalify:
        column.set("table", exp.to_identifier(alias))
    return IdentifierFix(before, column.sql())
