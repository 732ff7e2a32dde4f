"""Questions to the database about single values, for rewrites that check a literal against the data: which of a
table's columns hold it, and how the data spells it. Read-only, bounded by a row cap, a timeout per query and a
time budget for all of one candidate's probes (a large table without an index is scanned), remembered for the
candidate; a probe that fails or finds the budget spent answers "nothing found", so a rewrite built on it leaves
the query as it is."""

from __future__ import annotations

import logging
import time

import sqlglot
from sqlglot import exp

from text2sql.execution import ExecutionError, execute_read_only
from text2sql.schema import Table

logger = logging.getLogger(__name__)

# Enough rows to tell which columns hold a value without reading a whole table.
_ROWS = 50


class DatabaseProbe:
    def __init__(self, url: str, dialect: str, *, timeout_s: float = 5.0, budget_s: float = 3.0) -> None:
        self._url, self._dialect, self._timeout_s = url, dialect, timeout_s
        self._deadline = time.monotonic() + budget_s
        self._answers: dict[tuple, object] = {}

    def columns_holding(self, table: Table, columns: list[str], literal: str) -> set[str]:
        """Which of `columns` hold `literal` in some row, compared as the database compares it (`=`)."""
        key = ("holding", table.name, tuple(columns), literal)
        if key not in self._answers:
            tests = [exp.EQ(this=_column(name), expression=exp.Literal.string(literal)) for name in columns]
            query = exp.select(*tests).from_(_table(table.name, self._dialect)).where(exp.or_(*tests)).limit(_ROWS)
            rows = self._rows(query)
            self._answers[key] = {name for i, name in enumerate(columns) if any(row[i] for row in rows)}
        return set(self._answers[key])

    def spellings(self, table: Table, column: str, literal: str) -> list[str]:
        """The column's values equal to `literal` but for case (at most two: one is an answer, two are not)."""
        key = ("spellings", table.name, column, literal)
        if key not in self._answers:
            name = _column(column)
            query = (
                exp.select(name).distinct().from_(_table(table.name, self._dialect))
                .where(exp.EQ(this=exp.func("lower", name), expression=exp.func("lower", exp.Literal.string(literal))))
                .limit(2)
            )
            self._answers[key] = [row[0] for row in self._rows(query) if isinstance(row[0], str)]
        return list(self._answers[key])

    def _rows(self, query: exp.Expression) -> list[tuple]:
        left = self._deadline - time.monotonic()
        if left <= 0:
            return []
        sql = query.sql(dialect=sqlglot.Dialect.get_or_raise(self._dialect))
        try:
            result = execute_read_only(self._url, sql, max_rows=_ROWS, timeout_s=min(self._timeout_s, left))
            return [tuple(row) for row in result.rows]
        except ExecutionError as e:
            logger.info("value probe skipped: %s", e)
            return []


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _table(name: str, dialect: str) -> exp.Table:
    return exp.to_table(name, dialect=dialect) if "." in name else exp.table_(name, quoted=True)
