"""Small read-only queries the library asks of a database's data (keys read from the data, value indexes, literal
checks): how a schema table is named in such a query, and a runner that shares one time budget (and optionally a
query count) between them, where a query that cannot be read answers None and never raises."""

from __future__ import annotations

import logging
import time

import sqlglot
from sqlglot import exp

from text2sql.execution import ExecutionError, execute_read_only

logger = logging.getLogger(__name__)


def table_source(name: str, dialect: str | sqlglot.Dialect) -> exp.Table:
    """A schema table for a FROM clause, quoted as the schema spells it; an exposed schema's table is named
    `schema.table`."""
    return exp.to_table(name, dialect=dialect) if "." in name else exp.table_(name, quoted=True)


class BudgetedQueries:
    """Queries on one database that share a deadline (and at most `max_queries` of them); each gets the smaller of
    `timeout_s` and the time left."""

    def __init__(
        self, url: str, dialect: str, *, timeout_s: float, budget_s: float, max_queries: int | None = None,
        purpose: str,
    ) -> None:
        self._url, self._dialect, self._timeout_s = url, sqlglot.Dialect.get_or_raise(dialect), timeout_s
        self._deadline = time.monotonic() + budget_s
        self._left = max_queries
        self._purpose = purpose  # names the caller in the log line of a query that was skipped

    def rows(self, query: exp.Expression, *, max_rows: int) -> list[tuple] | None:
        """The query's rows; None when the budget is spent or the database refused it (logged)."""
        left_s = self._deadline - time.monotonic()
        if left_s <= 0 or (self._left is not None and self._left <= 0):
            return None
        if self._left is not None:
            self._left -= 1
        sql = query.sql(dialect=self._dialect)
        try:
            result = execute_read_only(self._url, sql, max_rows=max_rows, timeout_s=min(self._timeout_s, left_s))
        except ExecutionError as e:
            logger.info("%s: %s skipped: %s", self._purpose, sql, e)
            return None
        return [tuple(row) for row in result.rows]
