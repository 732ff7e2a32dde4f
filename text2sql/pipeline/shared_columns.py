"""Shared columns: an unqualified column that two joined tables both have (`SELECT museum_id FROM visit AS T1
JOIN museum AS T2 ON T1.museum_id = T2.museum_id`) passes validation, since it names a real column, and every
supported database refuses it as ambiguous. When the tables holding it are joined on that very column (by `=` in
an inner join's condition or the WHERE clause), every row holds the same value in each, so any of them answers;
it is qualified with the first in FROM order. Otherwise the question decides, and it is left for the database to
refuse and the model to repair. Only statements that would be refused change, so no right answer can turn wrong.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from text2sql.pipeline.scopes import (
    identifier,
    rewritten_per_level,
    select_aliases,
    spelled_alias,
    tables_by_alias,
)
from text2sql.schema import DatabaseSchema


def qualify_shared_columns(sql: str, *, dialect: str, schema: DatabaseSchema) -> tuple[str, list[str]] | None:
    """`sql` with its shared unqualified columns qualified, and a note per column; None when there was none."""
    return rewritten_per_level(sql, dialect, lambda scope: _qualify_level(scope, schema))


def _qualify_level(scope: Scope, schema: DatabaseSchema) -> list[str]:
    select: exp.Select = scope.expression
    tables = tables_by_alias(scope, schema)
    joins = select.args.get("joins") or []
    if not tables or len(tables) < 2 or not _plain_inner(joins):
        return []
    order = _aliases_in_from_order(select)
    outer = any((join.side or "").upper() == "LEFT" for join in joins)
    aliases = select_aliases(scope)
    notes = []
    for column in _level_columns(select):
        name = column.name.lower()
        if column.table or not name or name in aliases:
            continue
        holders = [alias for alias in order if alias in tables and tables[alias].column(name) is not None]
        if len(holders) < 2 or not _joined_on(name, holders, select):
            continue
        if outer and holders[0] != order[0]:
            continue  # only the FROM table keeps its values through a LEFT join
        qualifier = spelled_alias(scope, holders[0])
        column.set("table", identifier(qualifier))
        notes.append(f"qualified {name} as {qualifier}.{column.name} (the tables holding it are joined on it)")
    return list(dict.fromkeys(notes))


def _level_columns(select: exp.Select) -> list[exp.Column]:
    """Every column written at this level, ORDER BY's too: sqlglot's scope leaves out an ORDER BY name that matches
    an output column, and SQLite still calls it ambiguous."""
    return [c for c in select.find_all(exp.Column) if c.find_ancestor(exp.Select) is select]


def _plain_inner(joins: list[exp.Join]) -> bool:
    """Inner (or LEFT, whose FROM side comes first and keeps its values) joins with ON conditions: USING and
    NATURAL already merge their shared columns, and a RIGHT or FULL join keeps rows the first table lacks."""
    for join in joins:
        side = (join.side or "").upper()
        if join.args.get("using") or (join.kind or "").upper() == "NATURAL" or side in ("RIGHT", "FULL"):
            return False
    return True


def _aliases_in_from_order(select: exp.Select) -> list[str]:
    start = select.args.get("from_")
    sources = ([start.this] if start is not None else []) + [join.this for join in select.args.get("joins") or []]
    return [source.alias_or_name.lower() for source in sources]


def _joined_on(name: str, holders: list[str], select: exp.Select) -> bool:
    """Every holder is linked to the others by `a.name = b.name` conditions (ON or WHERE, at this level)."""
    linked = {holders[0]}
    pairs = _equalities_on(name, select)
    grew = True
    while grew:
        grew = False
        for left, right in pairs:
            if (left in linked) != (right in linked):
                linked |= {left, right}
                grew = True
    return set(holders) <= linked


def _equalities_on(name: str, select: exp.Select) -> list[tuple[str, str]]:
    """Pairs of aliases compared on `name` by a top-level conjunct of a join condition or of the WHERE clause
    (a comparison under OR or NOT does not hold for every row)."""
    conditions = [join.args.get("on") for join in select.args.get("joins") or []]
    where = select.args.get("where")
    conditions.append(where.this if where is not None else None)
    pairs = []
    for condition in conditions:
        if condition is None:
            continue
        for conjunct in condition.flatten() if isinstance(condition, exp.And) else [condition]:
            conjunct = conjunct.unnest()
            if not isinstance(conjunct, exp.EQ):
                continue
            left, right = conjunct.this, conjunct.expression
            if (
                isinstance(left, exp.Column) and isinstance(right, exp.Column)
                and left.table and right.table
                and left.name.lower() == right.name.lower() == name
            ):
                pairs.append((left.table.lower(), right.table.lower()))
    return pairs
