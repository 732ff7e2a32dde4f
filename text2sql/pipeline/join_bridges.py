"""Bridged joins: a join whose whole condition compares a column with itself (`Album AS T1 JOIN PlaylistTrack AS T2
ON T1.AlbumId = T1.AlbumId`) pairs every row with every row. Small models write it when the two tables share no
key and a table between them is needed (here Track). When the foreign keys give exactly one shortest way from the
tables before the join to the joined table, with at most two tables between, the condition becomes that way's keys
and the tables between are joined in. No model call; anything ambiguous is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from text2sql.pipeline.scopes import identifier, rewritten, spelled_alias, tables_by_alias
from text2sql.schema import DatabaseSchema

# Three keys (two tables between) reach Artist from Genre in Chinook; longer ways are rarely what was meant.
MAX_TABLES_BETWEEN = 2


@dataclass(frozen=True)
class Key:
    """`left`.`left_columns` = `right`.`right_columns`, one foreign key read in either direction (names as spelled)."""

    left: str
    left_columns: tuple[str, ...]
    right: str
    right_columns: tuple[str, ...]


@dataclass(frozen=True)
class Bridge:
    source: str  # the (lower-cased) alias of the table before the join that the way starts from
    keys: tuple[Key, ...]  # from the source's table to the joined table, in order

    @property
    def tables_between(self) -> list[str]:
        return [key.right for key in self.keys[:-1]]


def bridge_joins(sql: str, *, dialect: str, schema: DatabaseSchema) -> tuple[str, list[str]] | None:
    """`sql` with its self-comparing joins bridged, and what was changed; None when there was nothing to mend."""
    return rewritten(sql, dialect, lambda tree: bridge_self_joins(tree, schema))


def bridge_self_joins(tree: exp.Expression, schema: DatabaseSchema) -> list[str]:
    """Mend, in place, each join whose condition compares a column with itself; what was changed, per join."""
    keys = _keys_by_table(schema)
    changes = []
    for scope in traverse_scope(tree):
        if isinstance(scope.expression, exp.Select):
            changes += _bridge_level(scope, schema, keys)
    return changes


def compares_itself(condition: exp.Expression | None) -> bool:
    """`a.x = a.x` (or `x = x`): true for every row, so no condition between two tables at all."""
    if not isinstance(condition, exp.EQ):
        return False
    left, right = condition.this, condition.expression
    return (
        isinstance(left, exp.Column) and isinstance(right, exp.Column)
        and left.name.lower() == right.name.lower() and left.table.lower() == right.table.lower()
    )  # fmt: skip


def _keys_by_table(schema: DatabaseSchema) -> dict[str, list[Key]]:
    keys: dict[str, list[Key]] = {}
    for table in schema.tables:
        for fk in table.foreign_keys:
            referenced = schema.table(fk.ref_table)
            if referenced is None:
                continue
            out = Key(table.name, tuple(fk.columns), referenced.name, tuple(fk.ref_columns))
            back = Key(referenced.name, tuple(fk.ref_columns), table.name, tuple(fk.columns))
            keys.setdefault(table.name.lower(), []).append(out)
            keys.setdefault(referenced.name.lower(), []).append(back)
    return keys


def _bridge_level(scope: Scope, schema: DatabaseSchema, keys: dict[str, list[Key]]) -> list[str]:
    select: exp.Select = scope.expression
    tables = tables_by_alias(scope, schema)
    start = select.args.get("from_")
    joins = list(select.args.get("joins") or [])
    if not tables or start is None or not isinstance(start.this, exp.Table) or not joins:
        return []
    # Names already at this level, as aliases or tables: a table between must not collide with them.
    taken = set(tables) | {table.name.lower() for table in tables.values()}
    spelled = {alias: spelled_alias(scope, alias) for alias in tables}  # as the query writes each alias
    before = [start.this.alias_or_name.lower()]
    mended: list[exp.Join] = []
    changes = []
    for join in joins:
        joined = join.this
        if isinstance(joined, exp.Table) and compares_itself(join.args.get("on")):
            bridge = _only_bridge(before, joined.alias_or_name.lower(), tables, keys, taken)
            if bridge is not None:
                condition = join.args["on"].sql()
                lefts = [spelled[bridge.source], *bridge.tables_between]
                between = [_join_like(join, key, left) for key, left in zip(bridge.keys[:-1], lefts, strict=False)]
                join.set("on", _condition(bridge.keys[-1], left=lefts[-1], right=joined.alias_or_name))
                mended += between
                changes.append(f"ON {condition} -> " + " ".join(j.sql() for j in [*between, join]))
                for name in bridge.tables_between:
                    tables[name.lower()] = schema.table(name)
                    spelled[name.lower()] = name
                    before.append(name.lower())
                    taken.add(name.lower())
        mended.append(join)
        before.append(joined.alias_or_name.lower())
    if changes:
        select.set("joins", mended)
    return changes


def _only_bridge(
    before: list[str], target: str, tables: dict, keys: dict[str, list[Key]], taken: set[str]
) -> Bridge | None:
    """The one shortest way of foreign keys from a table before the join to the joined one; None if none or several."""
    target_name = tables[target].name.lower()
    sources = [(alias, tables[alias].name.lower()) for alias in before if alias in tables]
    if any(name == target_name for _, name in sources):
        return None  # a table joined to itself: which columns pair up is not the keys' to say
    for length in range(1, MAX_TABLES_BETWEEN + 2):
        found = [
            Bridge(alias, path) for alias, name in sources for path in _paths(name, target_name, length, keys, taken)
        ]
        if found:
            return found[0] if len(found) == 1 else None
    return None


def _paths(start: str, end: str, length: int, keys: dict[str, list[Key]], taken: set[str]) -> list[tuple[Key, ...]]:
    """Every way of exactly `length` keys from `start` to `end` whose tables between are new to the query."""
    if length == 1:
        return [(key,) for key in keys.get(start, []) if key.right.lower() == end]
    paths = []
    for key in keys.get(start, []):
        between = key.right.lower()
        if between not in taken and between not in (start, end):
            paths += [(key, *rest) for rest in _paths(between, end, length - 1, keys, taken | {start})]
    return paths


def _join_like(original: exp.Join, key: Key, left: str) -> exp.Join:
    """A join of the key's right table, of the same kind (INNER, LEFT, ...) as the join it is put before."""
    join = exp.Join(this=exp.Table(this=identifier(key.right)), on=_condition(key, left=left, right=key.right))
    for arg in ("side", "kind"):
        if original.args.get(arg):
            join.set(arg, original.args[arg])
    return join


def _condition(key: Key, *, left: str, right: str) -> exp.Expression:
    pairs = zip(key.left_columns, key.right_columns, strict=True)
    return exp.and_(*[
        exp.EQ(
            this=exp.Column(this=identifier(a), table=exp.to_identifier(left)),
            expression=exp.Column(this=identifier(b), table=exp.to_identifier(right)),
        )
        for a, b in pairs
    ])  # fmt: skip
