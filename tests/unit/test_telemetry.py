"""What one SQL answer counts as in the `text2sql_sql_outcomes` metric."""

from __future__ import annotations

from deployments.telemetry import sql_outcomes
from text2sql.pipeline.answer import Attempt, Candidate, SqlAnswer, Timings, Usage


def answer(attempts: list[Attempt], *, success: bool, candidates: list[Candidate] | None = None) -> SqlAnswer:
    return SqlAnswer(
        sql=attempts[-1].sql if success else "", success=success, model="m", dialect="sqlite", validated=success,
        attempts=attempts, candidates=candidates, raw_output="", usage=Usage(), timings=Timings(queue_ms=0, generate_ms=1),
    )


def test_a_first_time_answer_counts_nothing():
    assert sql_outcomes(answer([Attempt(round=0, sql="SELECT 1", stage="ok")], success=True)) == []


def test_a_repaired_answer_counts_the_failure_the_repair_and_its_success():
    attempts = [
        Attempt(round=0, sql="SELECT nam FROM t", stage="validate", error="unknown column", code="unknown_column"),
        Attempt(round=1, sql="SELECT name FROM t", stage="ok"),
    ]
    assert sql_outcomes(answer(attempts, success=True)) == [
        ("validation_rejected", "unknown_column"), ("repair_attempted", None), ("repair_succeeded", None),
    ]


def test_unsafe_parse_and_execution_failures_are_told_apart():
    attempts = [
        Attempt(round=0, sql="DROP TABLE t", stage="validate", error="write", code="not_read_only"),
        Attempt(round=1, sql="", stage="extract", error="no SQL", code="no_sql"),
        Attempt(round=2, sql="SELECT x FROM t", stage="execute", error="slow", code="timeout"),
    ]
    assert sql_outcomes(answer(attempts, success=False)) == [
        ("unsafe_refused", "not_read_only"),
        ("repair_attempted", None), ("parse_failure", "no_sql"),
        ("repair_attempted", None), ("execution_timeout", "timeout"),
    ]


def test_a_vote_is_counted_once_and_a_failed_last_repair_is_no_success():
    attempts = [
        Attempt(round=0, sql="SELECT 1", stage="execute", error="no such table", code="execution_failed"),
        Attempt(round=1, sql="SELECT 2", stage="execute", error="no such table", code="execution_failed"),
    ]
    outcomes = sql_outcomes(answer(attempts, success=False, candidates=[Candidate(sql="SELECT 1", votes=2)]))
    assert outcomes == [
        ("execution_error", "execution_failed"), ("repair_attempted", None), ("execution_error", "execution_failed"),
        ("vote", None),
    ]
