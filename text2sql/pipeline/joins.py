"""Join completion: a column that no table of its query level has, but that exactly one table one foreign key away
has, is reached by joining that table on the key (`SELECT id, name FROM battle WHERE ship_type = 'Brig'` gets
`JOIN ship ON battle.id = ship.lost_in_battle`). Small models often name the right column and forget its join, and
a re-prompt with "no table in scope has it" rarely mends that. No model call, and only when one table, one source
and one key fit; otherwise the query is left whole for a re-prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from text2sql.pipeline.scopes import identifier, own_columns, select_aliases, spelled_alias, tables_by_alias
from text2sql.schema import DatabaseSchema, Table


@dataclass(frozen=True)
class Link:
    """`source`.`source_columns` = `table`.`table_columns`: one foreign key between a query's source and a table."""

    source: str  # the alias (or name) the query gives the source, as spelled
    source_columns: tuple[str, ...]
    table: Table
    table_columns: tuple[str, ...]

    def pairs(self) -> list[tuple[str, str]]:
        return list(zip(self.source_columns, self.table_columns, strict=True))

    def condition(self) -> exp.Expression:
        return exp.and_(*[
            exp.EQ(
                this=exp.Column(this=identifier(s), table=exp.to_identifier(self.source)),
                expression=exp.Column(this=identifier(t), table=identifier(self.table.name)),
            )
            for s, t in self.pairs()
        ])

    def describe(self) -> str:
        on = " AND ".join(f"{self.source}.{s} = {self.table.name}.{t}" for s, t in self.pairs())
        return f"JOIN {self.table.name} ON {on}"


@dataclass
class _Plan:
    scope: Scope
    tables: dict[str, Table]
    aliases: set[str]  # the level's select aliases
    links: dict[int, Link]  # by id() of each missing column


def complete_joins(tree: exp.Expression, schema: DatabaseSchema) -> list[tuple[str, str, str]]:
    """Join the missing tables into `tree` in place; (column before, column after, the join) per column reached.
    Nothing changes unless every missing column of every level can be reached."""
    plans = []
    for scope in traverse_scope(tree):
        tables = tables_by_alias(scope, schema)
        if not tables or not isinstance(scope.expression, exp.Select):
            continue
        aliases = select_aliases(scope)
        outer = _enclosing_tables(scope, schema)
        missing = [c for c in own_columns(scope) if _is_missing(c, tables, aliases, outer)]
        if not missing:
            continue
        links = {id(c): _only_link(c.name, scope, tables, schema) for c in missing}
        if any(link is None for link in links.values()) or not _joinable(scope, tables, links.values()):
            return []
        plans.append(_Plan(scope, tables, aliases, links))
    changes = []
    for plan in plans:
        changes += _join(plan)
    return changes


def _enclosing_tables(scope: Scope, schema: DatabaseSchema) -> list[Table]:
    """The tables of every level that encloses `scope`, whose names an unqualified column may refer to."""
    tables = []
    parent = scope.parent
    while parent is not None:
        tables += (tables_by_alias(parent, schema) or {}).values()
        parent = parent.parent
    return tables


def _is_missing(column: exp.Column, tables: dict[str, Table], aliases: set[str], outer: list[Table]) -> bool:
    if isinstance(column.this, exp.Star):
        return False
    name = column.name
    if column.table:
        own = tables.get(column.table.lower())
        if own is None or own.column(name) is not None:
            return False
    elif name.lower() in aliases:
        return False
    # An unqualified name that an enclosing level has is a correlated reference, not a slip.
    reachable = [*tables.values(), *([] if column.table else outer)]
    return all(table.column(name) is None for table in reachable)


def _only_link(name: str, scope: Scope, tables: dict[str, Table], schema: DatabaseSchema) -> Link | None:
    present = {table.name.lower() for table in tables.values()}
    found = [
        link
        for table in schema.tables
        if table.name.lower() not in present and table.column(name) is not None
        for link in _links(scope, tables, table)
    ]
    return found[0] if len(found) == 1 else None


def _links(scope: Scope, tables: dict[str, Table], table: Table) -> list[Link]:
    links = []
    for alias, source in tables.items():
        spelled = spelled_alias(scope, alias)
        links += [
            Link(spelled, tuple(key.columns), table, tuple(key.ref_columns))
            for key in source.foreign_keys if key.ref_table.lower() == table.name.lower()
        ]
        links += [
            Link(spelled, tuple(key.ref_columns), table, tuple(key.columns))
            for key in table.foreign_keys if key.ref_table.lower() == source.name.lower()
        ]
    return links


def _joinable(scope: Scope, tables: dict[str, Table], links) -> bool:
    if any(link.table.name.lower() in tables for link in links):
        return False  # the table's name is already an alias at this level
    # A bare `*` would take the joined table's columns too; it is narrowed to the one source, so only then.
    stars = any(isinstance(s, exp.Star) for s in scope.expression.selects)
    return not stars or len(tables) == 1


def _join(plan: _Plan) -> list[tuple[str, str, str]]:
    scope, tables = plan.scope, plan.tables
    joined = {link.table.name: link for link in plan.links.values()}
    changes = []
    for column in own_columns(scope):
        link = plan.links.get(id(column))
        if link is not None:
            before = column.sql()
            column.set("table", identifier(link.table.name))
            changes.append((before, column.sql(), link.describe()))
        elif not column.table and not isinstance(column.this, exp.Star):
            # A name its one source had keeps that source, now that a joined table may share it.
            owners = [alias for alias, table in tables.items() if table.column(column.name) is not None]
            shared = any(link.table.column(column.name) is not None for link in joined.values())
            if len(owners) == 1 and shared and column.name.lower() not in plan.aliases:
                column.set("table", exp.to_identifier(spelled_alias(scope, owners[0])))
    select: exp.Select = scope.expression
    for star in [s for s in select.selects if isinstance(s, exp.Star)]:
        star.replace(exp.Column(this=exp.Star(), table=exp.to_identifier(spelled_alias(scope, next(iter(tables))))))
    for name, link in joined.items():
        select.join(exp.Table(this=identifier(name)), on=link.condition(), copy=False)
    return changes
