"""Questions to the database about single values, for rewrites that check a literal against the data: which of a
table's columns hold it, and how the data spells it. Read-only, bounded by a row cap, a timeout per query and a
time budget for all of one candidate's probes (a large table without an index is scanned), remembered for the
candidate; a probe that fails or finds the budget spent answers "nothing found", so a rewrite built on it leaves
the query as it is."""

from __future__ import annotations

from sqlglot import exp

from text2sql.schema import Table
from text2sql.schema.data_queries import BudgetedQueries, table_source

# Enough rows to tell which columns hold a value without reading a whole table.
_ROWS = 50


class DatabaseProbe:
    def __init__(self, url: str, dialect: str, *, timeout_s: float = 5.0, budget_s: float = 3.0) -> None:
        self._dialect = dialect
        self._queries = BudgetedQueries(url, dialect, timeout_s=timeout_s, budget_s=budget_s, purpose="value probe")
        self._answers: dict[tuple, object] = {}

    def columns_holding(self, table: Table, columns: list[str], literal: str) -> set[str]:
        """Which of `columns` hold `literal` in some row, compared as the database compares it (`=`)."""
        key = ("holding", table.name, tuple(columns), literal)
        if key not in self._answers:
            tests = [exp.EQ(this=_column(name), expression=exp.Literal.string(literal)) for name in columns]
            query = (
                exp.select(*tests).from_(table_source(table.name, self._dialect)).where(exp.or_(*tests)).limit(_ROWS)
            )
            rows = self._queries.rows(query, max_rows=_ROWS) or []
            self._answers[key] = {name for i, name in enumerate(columns) if any(row[i] for row in rows)}
        return set(self._answers[key])

    def spellings(self, table: Table, column: str, literal: str) -> list[str]:
        """The column's values equal to `literal` but for case (at most two: one is an answer, two are not)."""
        key = ("spellings", table.name, column, literal)
        if key not in self._answers:
            name = _column(column)
            query = (
                exp.select(name).distinct().from_(table_source(table.name, self._dialect))
                .where(exp.EQ(this=exp.func("lower", name), expression=exp.func("lower", exp.Literal.string(literal))))
                .limit(2)
            )
            rows = self._queries.rows(query, max_rows=2) or []
            self._answers[key] = [row[0] for row in rows if isinstance(row[0], str)]
        return list(self._answers[key])


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)
