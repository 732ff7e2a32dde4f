"""Unused joins: a table joined only to be joined, whose columns the query never reads, on the many side of a
foreign key (`SELECT AVG(T1.Milliseconds) FROM Track AS T1 JOIN PlaylistTrack AS T2 ON T1.TrackId = T2.TrackId`).
Such a join repeats each row once per referencing row and drops the rows nothing references, so an aggregate over
it sums and averages the wrong rows. Small models add it out of habit. It is dropped when the query level sums or
averages; without an aggregate such a join may be the question's own filter ("albums that have a track"), and a
count over it counts its rows, as asked ("how many customers does Steve support").
No model call; anything unclear is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from text2sql.pipeline.scopes import rewritten_per_level, tables_by_alias
from text2sql.schema import DatabaseSchema, Table
from text2sql.schema.select import words

# Aggregates that a repeated row changes; MIN and MAX are left to the question (only the filter acts on them), and
# a COUNT counts the joined rows (`_aggregates`).
_AGGREGATES = (exp.Sum, exp.Avg)


def drop_unused_joins(sql: str, *, dialect: str, schema: DatabaseSchema) -> tuple[str, list[str]] | None:
    """`sql` without its unused many-side joins in aggregating levels, and a note per join; None when none."""
    return rewritten_per_level(
        sql, dialect, lambda scope: _drop_in_level(scope, schema, acts_on=_aggregates, may_drop=lambda table, others: True)
    )


def drop_unnamed_joins(
    sql: str, *, dialect: str, schema: DatabaseSchema, question: str | None
) -> tuple[str, list[str]] | None:
    """`sql` without the unused many-side joins of plain levels whose table the question does not name, and a
    note per join; None when none (or no question)."""
    if not question:
        return None
    asked = set(words(question))
    return rewritten_per_level(
        sql, dialect,
        lambda scope: _drop_in_level(scope, schema, acts_on=_plain, may_drop=lambda table, others: not _named(table, asked, others)),
    )


def _drop_in_level(
    scope: Scope, schema: DatabaseSchema, *, acts_on: Callable[[exp.Select], bool], may_drop: Callable[[Table, list[Table]], bool]
) -> list[str]:
    select: exp.Select = scope.expression
    tables = tables_by_alias(scope, schema)
    start = select.args.get("from_")
    joins = select.args.get("joins") or []
    if not tables or start is None or not joins or not acts_on(select):
        return []
    if any(isinstance(s, exp.Star) for s in select.selects):
        return []  # a bare * reads every table's columns
    notes = []
    if not all(_inner(join) for join in joins):
        return []  # an outer join keeps rows that a dropped table would have removed, or the reverse
    for join in list(joins):
        alias = join.this.alias_or_name.lower()
        if (
            _is_unused(alias, join.args.get("on"), select, tables, schema)
            and _many_side(join.args["on"], alias, tables)
            and may_drop(tables[alias], _others(alias, tables))
        ):
            notes.append(f"dropped the unused join {join.sql()}")
            join.pop()
    joins = select.args.get("joins") or []
    first = start.this.alias_or_name.lower()
    if (
        joins
        and _is_unused(first, joins[0].args.get("on"), select, tables, schema)
        and _many_side(joins[0].args["on"], first, tables)
        and may_drop(tables[first], _others(first, tables))
    ):
        # The FROM table goes: the first join's table takes its place, without the condition that linked them.
        notes.append(
            f"dropped the unused {start.this.sql()} and its join condition {joins[0].args['on'].sql()}"
        )
        replacement = joins[0].this.pop()
        joins[0].pop()
        start.set("this", replacement)
    return notes


def _aggregates(select: exp.Select) -> bool:
    """The level sums or averages, over no DISTINCT values, and counts nothing. A count over such a join counts
    the joined table's rows ("how many customers does Steve support": `COUNT(*) FROM Employee JOIN Customer`),
    which is what it asks: Spider train's gold queries count over an unread many-side join 160 times."""
    level = _level_aggregates(select)
    if any(isinstance(n, exp.Count) for n in level):
        return False
    found = [n for n in level if isinstance(n, _AGGREGATES)]
    return bool(found) and not any(n.find(exp.Distinct) for n in found)


def _plain(select: exp.Select) -> bool:
    """A level where an unread join is no one's intent but its own: it counts nothing (a count over the join
    counts the joined rows: "students and the number of courses they registered for"), takes no DISTINCT values
    (DISTINCT over a join asks for the rows that have a match: "the different cities where people live"), and is
    not a branch of a set operation (`... EXCEPT SELECT name FROM artist JOIN album`: the join is the filter)."""
    if select.args.get("distinct") is not None or isinstance(select.parent, exp.SetOperation):
        return False
    return not any(isinstance(n, exp.Count) for n in _level_aggregates(select))


def _level_aggregates(select: exp.Select) -> list[exp.AggFunc]:
    """The aggregates written at this level, not those of a subquery inside it."""
    return [n for n in select.find_all(exp.AggFunc) if n.find_ancestor(exp.Select) is select]


def _named(table: Table, asked: set[str], others: list[Table]) -> bool:
    """The question names the table: one of its name's words (course_arrange: course, arrange), singular and
    lower-cased as the question's are, that no other table of the level has ("tracks" names Track, not
    PlaylistTrack beside it)."""
    taken = {word for other in others for word in words(other.name)}
    return bool(asked & (set(words(table.name)) - taken))


def _others(alias: str, tables: dict[str, Table]) -> list[Table]:
    return [table for other, table in tables.items() if other != alias]


def _is_unused(
    alias: str, condition: exp.Expression | None, select: exp.Select, tables: dict[str, Table], schema: DatabaseSchema
) -> bool:
    """True when `alias` is a plain inner join whose table no column outside `condition` reads, here or below."""
    if condition is None or alias not in tables:
        return False
    own_names = {c.name.lower() for c in tables[alias].columns}
    in_condition = {id(column) for column in condition.find_all(exp.Column)}
    for column in select.find_all(exp.Column):
        if id(column) in in_condition:
            continue
        qualifier = column.table.lower()
        if qualifier == alias:
            return False  # read elsewhere
        if not qualifier and column.name.lower() in own_names and not _resolved_below(column, select, schema):
            return False  # perhaps read: an unqualified name it has
    return True


def _resolved_below(column: exp.Column, select: exp.Select, schema: DatabaseSchema) -> bool:
    """An unqualified column inside a subquery whose own tables have it: SQL reads it from those, not from the
    level above (`WHERE T1.UnitPrice > (SELECT AVG(UnitPrice) FROM Track)`)."""
    inner = column.find_ancestor(exp.Select)
    while inner is not None and inner is not select:
        sources = [inner.args.get("from_"), *(inner.args.get("joins") or [])]
        for source in sources:
            if source is not None and isinstance(source.this, exp.Table):
                table = schema.table(source.this.name)
                if table is not None and table.column(column.name) is not None:
                    return True
        inner = inner.find_ancestor(exp.Select)
    return False


def _many_side(condition: exp.Expression, alias: str, tables: dict[str, Table]) -> bool:
    """The condition is exactly one of `alias`'s foreign keys to the other table: each of the other's rows
    then meets `alias`'s rows once per reference."""
    if not isinstance(condition, exp.EQ):
        return False
    left, right = condition.this, condition.expression
    if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
        return False
    if right.table.lower() == alias:
        left, right = right, left
    if left.table.lower() != alias or right.table.lower() not in tables or right.table.lower() == alias:
        return False
    child, parent = tables[alias], tables[right.table.lower()]
    keys = [c.name.lower() for c in child.columns if c.primary_key]
    if keys == [left.name.lower()]:
        return False  # its key is the reference: one row per parent row (a gymnast is one person), no repetition
    return child.references(left.name, parent.name, right.name)


def _inner(join: exp.Join) -> bool:
    return not join.args.get("side") and join.args.get("kind") in (None, "INNER")

