"""Filters no row can meet: `WHERE T2.Language = 'English' AND T2.Language = 'French'` asks one row to hold two
values, so the query always answers nothing. The question meant the entities that have both ("countries that
speak English and French"): each value gets a query of its own, and INTERSECT keeps what they share. A count
(`COUNT(DISTINCT T1.Code)`) counts that intersection. No model call; a query whose shape leaves the entity
unclear (grouped, ordered, limited, a bare `COUNT(*)`, or without a join) is left as it is.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from text2sql.schema import DatabaseSchema


def split_conflicting_filters(
    sql: str, *, dialect: str, schema: DatabaseSchema | None = None
) -> tuple[str, list[str]] | None:
    """`sql` as an INTERSECT of one query per value when its WHERE asks one column for two values, and a note;
    None otherwise. `schema` is not needed (the statement's shape is enough); it is taken like the other rewrites'."""
    del schema
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (SqlglotError, RecursionError, ValueError):
        return None
    split = _split(tree) if isinstance(tree, exp.Select) else None
    if split is None:
        return None
    statement, note = split
    return statement.sql(dialect=dialect, comments=False), [note]


def _split(select: exp.Select) -> tuple[exp.Expression, str] | None:
    if not select.args.get("joins") or any(
        select.args.get(part) for part in ("group", "having", "order", "limit", "offset")
    ):
        return None
    where = select.args.get("where")
    if where is None:
        return None
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    equalities = _one_column_asked_twice(conjuncts)
    if equalities is None:
        return None
    counted = _counted_column(select)
    if counted is False:
        return None
    rest = list({c.sql(): c for c in conjuncts if not any(c is e for e in equalities)}.values())
    parts = []
    for equality in equalities:
        part = select.copy()
        if counted is not None:
            part.set("expressions", [counted.copy()])
            part.set("distinct", None)
        part.set("where", exp.Where(this=exp.and_(*[c.copy() for c in rest], equality.copy())))
        parts.append(part)
    combined: exp.Expression = parts[0]
    for part in parts[1:]:
        combined = exp.Intersect(this=combined, expression=part, distinct=True)
    values = " and ".join(e.expression.sql() for e in equalities)
    note = f"{equalities[0].this.sql()} was asked for {values} in one row: each asked apart, then intersected"
    if counted is None:
        return combined, note
    return exp.select(exp.Count(this=exp.Star())).from_(combined.subquery("shared")), note


def _one_column_asked_twice(conjuncts: list[exp.Expression]) -> list[exp.EQ] | None:
    """The `column = literal` conjuncts of the one column compared with two or more different literals."""
    by_column: dict[str, list[exp.EQ]] = {}
    for conjunct in conjuncts:
        if (
            isinstance(conjunct, exp.EQ)
            and isinstance(conjunct.this, exp.Column)
            and isinstance(conjunct.expression, exp.Literal)
        ):
            by_column.setdefault(conjunct.this.sql().lower(), []).append(conjunct)
    conflicting = [eqs for eqs in by_column.values() if len({e.expression.sql() for e in eqs}) > 1]
    return conflicting[0] if len(conflicting) == 1 else None


def _counted_column(select: exp.Select) -> exp.Column | None | bool:
    """None for a plain listing (intersected as it is); the column a lone COUNT counts; False for anything else
    (an aggregate beside other columns, a COUNT(*) that names no entity)."""
    aggregates = [p for p in select.selects if p.find(exp.AggFunc)]
    if not aggregates:
        return None
    if len(select.selects) != 1:
        return False
    count = select.selects[0].unalias()
    if not isinstance(count, exp.Count):
        return False
    argument = count.this
    if isinstance(argument, exp.Distinct):
        argument = argument.expressions[0] if len(argument.expressions) == 1 else None
    return argument if isinstance(argument, exp.Column) else False
