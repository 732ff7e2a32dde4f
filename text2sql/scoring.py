"""Is an answer right? Gold results executed once per (database, query), and each benchmark's own rule.

Shared by the accuracy benchmarks (bench/) and the training evaluation (training/evaluate.py), so a number from
either means the same thing. The rules themselves are in `text2sql.accuracy`:

- `spider`: columns in any order, no extra columns, row order only when the gold query orders (Spider's rule);
- `sql-eval`: the same, but a prediction with extra columns may still match (defog sql-eval's subset rule).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from text2sql.accuracy import execution_match, expand_gold_alternatives, gold_orders
from text2sql.execution import ExecutionError, execute_read_only

logger = logging.getLogger(__name__)

RULES = ("spider", "sql-eval")
GOLD_MAX_ROWS = 20000
GOLD_TIMEOUT_S = 60


def rule_of_suite(suite: str) -> str:
    """Spider and its translations by Spider's rule; sql-eval and sets built like it by sql-eval's."""
    return "spider" if suite.startswith("spider") else "sql-eval"


class GoldResults:
    """Gold query results, run read-only once per (database, query) and shared by every model and variant.
    `url_of(database)` gives the SQLAlchemy URL of a database name."""

    def __init__(self, url_of: Callable[[str], str]) -> None:
        self._url_of = url_of
        self._cache: dict[tuple[str, str], list] = {}
        self._lock = threading.Lock()

    def results(self, database: str, gold_sql: str) -> list:
        """One result per alternative of the gold query that runs (Spider's `{a,b}` and `;` alternatives)."""
        key = (database, gold_sql)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        url = self._url_of(database)
        results = []
        for alternative in expand_gold_alternatives(gold_sql):
            try:
                results.append(execute_read_only(url, alternative, max_rows=GOLD_MAX_ROWS, timeout_s=GOLD_TIMEOUT_S))
            except ExecutionError as e:
                logger.warning("a gold query on %s does not run: %s", database, e)
        with self._lock:
            self._cache[key] = results
        return results


def judge(
    gold: GoldResults,
    *,
    database: str,
    gold_sql: str,
    dialect: str,
    result: tuple[Sequence[str], Sequence[Sequence[Any]]] | Any,
    ignore_duplicates: bool = False,
) -> dict[str, bool]:
    """Right or not by each rule, for one answer's result (`(columns, rows)` or an execution result)."""
    gold_results = gold.results(database, gold_sql)
    if not gold_results:
        return dict.fromkeys(RULES, False)
    try:
        order = gold_orders(gold_sql, dialect)
    except ValueError:
        order = False
    return {
        rule: execution_match(
            gold_results, result, order_matters=order, ignore_duplicates=ignore_duplicates,
            allow_extra_columns=rule == "sql-eval",
        )
        for rule in RULES
    }
