"""Negation across a one-to-many join. "Students who do not have a cat" is often written as
`FROM Student AS T1 JOIN Has_Pet AS T2 ON ... JOIN Pets AS T3 ON ... WHERE T3.PetType <> 'cat'`: that lists the
students who have some pet that is not a cat, and drops those with no pet at all. When the question says "not"
(or "no", "never", "without", 不, 没有...) and the `<>` filters a table that the selected table reaches through a
one-to-many foreign key, the filter becomes `NOT EXISTS` (no such row) and the join that only carried it goes:
`FROM Student AS T1 WHERE NOT EXISTS (SELECT 1 FROM Has_Pet AS T2 JOIN Pets AS T3 ON ... WHERE T2.StuID =
T1.StuID AND T3.PetType = 'cat')`. A `<>` on the selected table itself, or on a table it references (each row
has one: "members whose party is not X"), stays, as does anything the foreign keys and joins do not settle.
No model call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import build_scope

from text2sql.pipeline.scopes import owning_alias, rewritten, spelled_alias, tables_by_alias
from text2sql.schema import DatabaseSchema, Table

# Words that put a question's condition in the negative; "not" inside "another" or "nothing" is not matched.
# 不同 (different), 非常 (very) and 未来 (future) are not negations.
_NEGATION = re.compile(
    r"\b(?:not|no|never|without|none|nobody|neither|nor)\b|n't\b|不(?!同)|没|未(?!来)|无|非(?!常)", re.IGNORECASE
)


def is_negated(question: str) -> bool:
    return bool(_NEGATION.search(question))


@dataclass(frozen=True)
class _Edge:
    """One equality of a join condition: `left`.`left_column` = `right`.`right_column` (aliases lower-cased)."""

    left: str
    left_column: str
    right: str
    right_column: str
    join_index: int  # the join whose condition holds it

    def other(self, alias: str) -> tuple[str, str, str]:
        """(the other alias, this side's column, the other side's column)."""
        if alias == self.left:
            return self.right, self.left_column, self.right_column
        return self.left, self.right_column, self.left_column


def negate_across_joins(
    sql: str, *, dialect: str, schema: DatabaseSchema, question: str | None
) -> tuple[str, list[str]] | None:
    """`sql` with its `<>` across a one-to-many join made a `NOT EXISTS`, and a note; None when nothing changed
    (no question, no negation in it, or a query this does not settle)."""
    if not question or not is_negated(question):
        return None
    return rewritten(sql, dialect, lambda tree: _negate(tree, schema))


def _negate(tree: exp.Expression, schema: DatabaseSchema) -> list[str]:
    if not isinstance(tree, exp.Select):
        return []  # a set operation already says what it excludes
    scope = build_scope(tree)
    tables = tables_by_alias(scope, schema) if scope else None
    joins = tree.args.get("joins") or []
    where = tree.args.get("where")
    if not tables or not joins or where is None or not all(_plain_inner(join) for join in joins):
        return []
    edges = _edges(joins)
    if edges is None:
        return []
    conjuncts = list(where.this.flatten()) if isinstance(where.this, exp.And) else [where.this]
    selected = _aliases_of(tree.selects, tables) or {_from_alias(tree)}
    found = [
        (conjunct, column, value)
        for conjunct in conjuncts
        if (inequality := _inequality(conjunct)) is not None
        for column, value in [inequality]
        if (alias := owning_alias(column, tables)) is not None and alias not in selected
    ]
    if len(found) != 1:
        return []  # none, or several: which pairs with which is unclear
    conjunct, column, value = found[0]
    target = owning_alias(column, tables)
    cut = _fan_out(selected, target, edges, tables)
    if cut is None:
        return []
    entity, entity_column, branch_root, branch_column, branch = cut
    if _from_alias(tree) in branch or not _joined_by(joins, branch_root, entity, edges):
        return []
    rest = [c for c in conjuncts if c is not conjunct]
    keeps_branch = _reads(branch, rest, tree, tables)
    subquery = _subquery(joins, branch, branch_root)
    subquery.where(
        exp.EQ(this=exp.column(branch_column, table=spelled_alias(scope, branch_root)),
               expression=exp.column(entity_column, table=spelled_alias(scope, entity))),
        append=True, copy=False,
    )
    subquery.where(exp.EQ(this=column.copy(), expression=value.copy()), append=True, copy=False)
    before = conjunct.sql()
    if not keeps_branch:
        for join in [j for j in joins if j.this.alias_or_name.lower() in branch]:
            join.pop()
    condition = exp.Not(this=exp.Exists(this=subquery))
    tree.set("where", exp.Where(this=exp.and_(*rest, condition) if rest else condition))
    kept = "kept" if keeps_branch else "dropped"
    return [f"{before} across a one-to-many join became NOT EXISTS (no such row); the join {kept}"]


def _plain_inner(join: exp.Join) -> bool:
    side, kind = (join.side or "").upper(), (join.kind or "").upper()
    return not side and kind in ("", "INNER") and join.args.get("on") is not None and not join.args.get("using")


def _edges(joins: list[exp.Join]) -> list[_Edge] | None:
    """Each join's condition as column equalities, each with the joined table on one side; None otherwise."""
    edges = []
    for index, join in enumerate(joins):
        joined = join.this.alias_or_name.lower()
        condition = join.args["on"]
        for part in condition.flatten() if isinstance(condition, exp.And) else [condition]:
            part = part.unnest()
            if not (
                isinstance(part, exp.EQ) and isinstance(part.this, exp.Column) and isinstance(part.expression, exp.Column)
                and part.this.table and part.expression.table
            ):
                return None
            edge = _Edge(part.this.table.lower(), part.this.name, part.expression.table.lower(), part.expression.name, index)
            if joined not in (edge.left, edge.right):
                return None
            edges.append(edge)
    return edges


def _inequality(conjunct: exp.Expression) -> tuple[exp.Column, exp.Expression] | None:
    """`column <> literal` (or `NOT column = literal`), literal on either side."""
    conjunct = conjunct.unnest()
    if isinstance(conjunct, exp.Not) and isinstance(conjunct.this.unnest(), exp.EQ):
        conjunct = exp.NEQ(this=conjunct.this.unnest().this, expression=conjunct.this.unnest().expression)
    if not isinstance(conjunct, exp.NEQ):
        return None
    left, right = conjunct.this, conjunct.expression
    if isinstance(left, exp.Literal) and isinstance(right, exp.Column):
        left, right = right, left
    if isinstance(left, exp.Column) and isinstance(right, exp.Literal):
        return left, right
    return None


def _aliases_of(expressions: list[exp.Expression], tables: dict[str, Table]) -> set[str]:
    return {
        alias
        for expression in expressions
        for column in expression.find_all(exp.Column)
        if (alias := owning_alias(column, tables)) is not None
    }


def _from_alias(select: exp.Select) -> str:
    return select.args["from_"].this.alias_or_name.lower()


def _fan_out(
    selected: set[str], target: str, edges: list[_Edge], tables: dict[str, Table]
) -> tuple[str, str, str, str, set[str]] | None:
    """The first one-to-many step on the one way from the selected tables to `target`: (the one side's alias, its
    key column, the many side's alias, its referencing column, every alias past that step). None when the way is
    not unique, a step's direction is not a declared key, or every step is many-to-one."""
    way = _only_way(selected, target, edges)
    if way is None:
        return None
    for here, edge in way:
        there, here_column, there_column = edge.other(here)
        if tables[there].references(there_column, tables[here].name, here_column):
            branch = _beyond(there, here, edges)
            return here, here_column, there, there_column, branch
        if not tables[here].references(here_column, tables[there].name, there_column):
            return None  # a join on no declared key: its direction is unknown
    return None


def _only_way(selected: set[str], target: str, edges: list[_Edge]) -> list[tuple[str, _Edge]] | None:
    """The steps from the nearest selected alias to `target` through the joins, if the joins form a tree."""
    aliases = {edge.left for edge in edges} | {edge.right for edge in edges}
    if len(edges) != len(aliases) - 1:
        return None  # a cycle, or two equalities between one pair: not a plain tree of joins
    previous: dict[str, tuple[str, _Edge] | None] = {alias: None for alias in selected if alias in aliases}
    queue = list(previous)
    while queue:
        here = queue.pop(0)
        for edge in edges:
            if here in (edge.left, edge.right):
                there = edge.other(here)[0]
                if there not in previous:
                    previous[there] = (here, edge)
                    queue.append(there)
    if target not in previous or previous[target] is None:
        return None
    way, here = [], target
    while previous[here] is not None:
        back, edge = previous[here]
        way.append((back, edge))
        here = back
    return list(reversed(way))


def _beyond(start: str, back: str, edges: list[_Edge]) -> set[str]:
    """`start` and every alias reached from it without going back through `back`."""
    seen, queue = {start}, [start]
    while queue:
        here = queue.pop()
        for edge in edges:
            if here in (edge.left, edge.right):
                there = edge.other(here)[0]
                if there != back and there not in seen:
                    seen.add(there)
                    queue.append(there)
    return seen


def _reads(branch: set[str], rest: list[exp.Expression], select: exp.Select, tables: dict[str, Table]) -> bool:
    """Whether anything but the join conditions and the rewritten filter reads a table of the branch."""
    parts: list[exp.Expression] = list(select.selects) + list(rest)
    for key in ("group", "having", "order"):
        if select.args.get(key) is not None:
            parts.append(select.args[key])
    return bool(_aliases_of(parts, tables) & branch)


def _joined_by(joins: list[exp.Join], root: str, entity: str, edges: list[_Edge]) -> bool:
    """The branch's first table is joined by the one-to-many step alone, so the branch can move into a subquery
    whole (its other tables' conditions stay among themselves: the joins form a tree)."""
    index = next((i for i, join in enumerate(joins) if join.this.alias_or_name.lower() == root), None)
    own = [edge for edge in edges if edge.join_index == index]
    return index is not None and len(own) == 1 and {own[0].left, own[0].right} == {root, entity}


def _subquery(joins: list[exp.Join], branch: set[str], root: str) -> exp.Select:
    """`SELECT 1 FROM <root> JOIN <the rest of the branch, on their own conditions>`, in the query's join order."""
    by_alias = {join.this.alias_or_name.lower(): join for join in joins}
    subquery = exp.select("1").from_(by_alias[root].this.copy(), copy=False)
    for alias, join in by_alias.items():
        if alias in branch and alias != root:
            subquery.join(join.copy(), copy=False)
    return subquery
