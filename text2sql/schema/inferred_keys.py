"""Join keys read from the data of a database that declares none.

Dumps and warehouses often carry no FOREIGN KEY constraints (sql-eval's databases have none), so neither the
prompt nor join completion can see how their tables join. A column is taken to reference another table's column
when their names say so and the data agrees:
- the names: the same key-like name in both tables (`writes.aid`, `author.aid`), or `<table>_id` against that
  table's `id` (`orders.customer_id`, `customers.id`);
- the data: the referenced column is non-null and unique, and at least `min_coverage` of the referencing
  column's non-null values are found in it.
A column that two tables could equally be referencing, or a one-to-one pair whose names do not say which side
is referenced, gets no key: a wrong key misleads more than a missing one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from text2sql.schema.data_queries import BudgetedQueries, table_source
from text2sql.schema.model import Column, DatabaseSchema, Table

# Names that identify a row: any ending in `id` (`aid`, `customer_id`, `CustomerId`), and `code`, `key`, `no` as a
# word (`airline_code`, `order_key`, `order_no`). The data checks rule out the rest (`paid` is never unique).
_KEY_NAME = re.compile(r"^(?:.*id|code|key|.+_(?:code|key|no))$", re.IGNORECASE)
_INTEGER = re.compile(r"int|serial", re.IGNORECASE)
_TEXT = re.compile(r"char|text|clob|string", re.IGNORECASE)


@dataclass(frozen=True)
class InferredKey:
    table: str
    column: str
    ref_table: str
    ref_column: str

    def as_tuple(self) -> tuple[str, str, str, str]:
        return self.table, self.column, self.ref_table, self.ref_column

    def relationship(self) -> str:
        """As `databases.<name>.relationships` writes it."""
        return f"{self.table}.{self.column} -> {self.ref_table}.{self.ref_column}"


def infer_keys(
    url: str, schema: DatabaseSchema, dialect: str, *, min_coverage: float = 0.9, timeout_s: float = 10.0,
    max_queries: int = 400, budget_s: float = 30.0,
) -> list[InferredKey]:
    """The keys the names suggest and the data confirms, for a schema that declares none (see the module doc).
    A query that fails or times out rules its candidate out; at most `max_queries` queries are run, and none once
    `budget_s` has passed, so a large database delays its schema by a bounded time."""
    queries = BudgetedQueries(
        url, dialect, timeout_s=timeout_s, budget_s=budget_s, max_queries=max_queries, purpose="key inference"
    )
    probe = _Probe(queries, dialect)
    confirmed: dict[tuple[str, str], list[tuple[Table, Column]]] = {}
    for child, child_column, parent, parent_column in _candidates(schema):
        if probe.unique(parent, parent_column) is not True:
            continue
        if probe.coverage(child, child_column, parent, parent_column) < min_coverage:
            continue
        child_unique = probe.unique(child, child_column)
        if child_unique is None or (child_unique and not _names_parent(child_column.name, parent.name)):
            continue  # not known, or one-to-one and the names do not say which side is referenced
        confirmed.setdefault((child.name, child_column.name), []).append((parent, parent_column))
    keys = []
    for (table, column), parents in confirmed.items():
        if len(parents) > 1:
            parents = [p for p in parents if _names_parent(column, p[0].name)]
        if len(parents) == 1:
            keys.append(InferredKey(table, column, parents[0][0].name, parents[0][1].name))
    return keys


def _candidates(schema: DatabaseSchema) -> Iterator[tuple[Table, Column, Table, Column]]:
    for parent in schema.tables:
        for parent_column in parent.columns:
            if not _KEY_NAME.match(parent_column.name):
                continue
            for child in schema.tables:
                if child is parent:
                    continue
                for child_column in child.columns:
                    if _names_match(child_column.name, parent_column.name, parent.name) and _types_agree(
                        child_column.type, parent_column.type
                    ):
                        yield child, child_column, parent, parent_column


def _names_match(child_column: str, parent_column: str, parent_table: str) -> bool:
    child, parent = child_column.lower(), parent_column.lower()
    if child == parent:
        return parent != "id"  # every table's own `id` is not a reference to every other's
    return parent == "id" and _names_parent(child, parent_table) and child.endswith("id")


def _names_parent(column: str, table: str) -> bool:
    """`customer_id`, `CustomerId` or `customers_id` names table `customers` (or `customer`)."""
    stem = re.sub(r"_?(?:id|code|key|no)$", "", column.lower())
    names = {table.lower().rsplit(".", 1)[-1]}
    names |= {_singular(name) for name in names}
    return stem in names


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("s") and not name.endswith("ss"):
        return name[:-1]
    return name


def _types_agree(child: str, parent: str) -> bool:
    def family(declared: str) -> str:
        return "integer" if _INTEGER.search(declared) else "text" if _TEXT.search(declared) else declared.lower()
    return not child or not parent or family(child) == family(parent)


class _Probe:
    """The data checks, each query run once and read-only."""

    def __init__(self, queries: BudgetedQueries, dialect: str) -> None:
        self._queries, self._dialect = queries, sqlglot.Dialect.get_or_raise(dialect)
        self._unique: dict[tuple[str, str], bool] = {}

    def unique(self, table: Table, column: Column) -> bool | None:
        """Whether every row has a value and no two the same; None when that could not be read."""
        key = (table.name, column.name)
        if key not in self._unique:
            name = exp.column(column.name, quoted=True)
            query = exp.select(
                exp.func("count", exp.Star()), exp.func("count", name), exp.Count(this=exp.Distinct(expressions=[name]))
            ).from_(table_source(table.name, self._dialect))
            row = self._row(query)
            self._unique[key] = None if row is None else row[0] > 0 and row[0] == row[1] == row[2]
        return self._unique[key]

    def coverage(self, child: Table, child_column: Column, parent: Table, parent_column: Column) -> float:
        """The share of the child's non-null values that the parent has (0 when it has none)."""
        child_name = exp.column(child_column.name, table="c", quoted=True)
        parent_name = exp.column(parent_column.name, table="p", quoted=True)
        query = (
            exp.select(exp.func("count", child_name), exp.func("count", parent_name))
            .from_(exp.alias_(table_source(child.name, self._dialect), "c"))
            .join(exp.alias_(table_source(parent.name, self._dialect), "p"), on=exp.EQ(this=child_name, expression=parent_name),
                  join_type="left")
        )
        row = self._row(query)
        return row[1] / row[0] if row is not None and row[0] else 0.0

    def _row(self, query: exp.Expression) -> tuple | None:
        rows = self._queries.rows(query, max_rows=1)
        return rows[0] if rows else None
