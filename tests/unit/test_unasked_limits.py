"""A follow-up's answer that adds a LIMIT nobody asked for (the previous SQL had none, the follow-up ranks
nothing) loses it. The statements run on a real SQLite file."""

from __future__ import annotations

import pytest

from tests.sqlite_files import sqlite_database
from text2sql.execution import execute_read_only
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.rewrites import Asked, Rewrites
from text2sql.pipeline.unasked_limits import asks_for_ranked_rows, drop_unasked_limit
from text2sql.schema.introspect import introspect

DDL = """
CREATE TABLE Invoice (InvoiceId INTEGER PRIMARY KEY, InvoiceDate TEXT, BillingCountry TEXT, Total REAL);
INSERT INTO Invoice VALUES (1, '2009-01-02', 'Germany', 2.0), (2, '2010-03-04', 'Germany', 5.0),
  (3, '2011-05-06', 'Germany', 1.0), (4, '2010-07-08', 'France', 9.0);
"""
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")
PREVIOUS = "SELECT STRFTIME('%Y', InvoiceDate) AS year, SUM(Total) FROM Invoice GROUP BY year ORDER BY year"
GERMANY = (
    "SELECT STRFTIME('%Y', InvoiceDate) AS year, SUM(Total) FROM Invoice WHERE BillingCountry = 'Germany' "
    "GROUP BY year ORDER BY year"
)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("limits") / "shop.sqlite", DDL)


@pytest.fixture(scope="module")
def schema(database: str):
    return introspect(database)


def rows(database: str, sql: str) -> list[tuple]:
    return [tuple(row) for row in execute_read_only(database, sql, max_rows=100, timeout_s=5).rows]


def test_a_limit_the_follow_up_did_not_ask_for_is_dropped(database, schema) -> None:
    one_year = f"{GERMANY} LIMIT 1"
    assert rows(database, one_year) == [("2009", 2.0)]
    sql, notes = drop_unasked_limit(
        one_year, dialect="sqlite", schema=schema, question="only for invoices billed to Germany", previous_sql=PREVIOUS
    )
    assert sql == GERMANY
    assert notes == ["dropped LIMIT 1: the follow-up asks for no top or bottom rows, and the previous query had none"]
    assert rows(database, sql) == [("2009", 2.0), ("2010", 5.0), ("2011", 1.0)]


@pytest.mark.parametrize(
    ("question", "previous"),
    [
        ("which year was the best?", PREVIOUS),  # ranks: the LIMIT is the answer
        ("and the top 2?", PREVIOUS),
        ("哪一年的销售额最高？", PREVIOUS),
        ("only for invoices billed to Germany", f"{PREVIOUS} LIMIT 3"),  # the previous query was limited already
        ("only for invoices billed to Germany", None),  # not a follow-up
    ],
)
def test_a_limit_that_may_be_meant_stays(schema, question: str, previous: str | None) -> None:
    assert drop_unasked_limit(
        f"{GERMANY} LIMIT 1", dialect="sqlite", schema=schema, question=question, previous_sql=previous
    ) is None


def test_an_offset_and_a_statement_without_limit_stay(schema) -> None:
    for sql in (f"{GERMANY} LIMIT 1 OFFSET 1", GERMANY):
        assert drop_unasked_limit(
            sql, dialect="sqlite", schema=schema, question="what about Germany?", previous_sql=PREVIOUS
        ) is None


def test_ranking_words() -> None:
    assert asks_for_ranked_rows("Which customer spent the most?") and asks_for_ranked_rows("the newest one")
    assert asks_for_ranked_rows("前五名是谁？")
    assert not asks_for_ranked_rows("only the artists with more than 20 of them")
    assert not asks_for_ranked_rows("what's the average track price for each of those, out west?")


def test_the_candidate_check_drops_it_for_a_follow_up_unless_switched_off(database, schema) -> None:
    target = ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5)
    follow_up = Asked(question="what about France?", previous_sql=PREVIOUS)
    reply = "SELECT STRFTIME('%Y', InvoiceDate) AS year, SUM(Total) FROM Invoice WHERE BillingCountry = 'France' " \
        "GROUP BY year ORDER BY year LIMIT 1"
    dropped = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target, asked=follow_up)
    assert dropped.ok and "LIMIT" not in dropped.answer_sql and dropped.fixes[-1].startswith("dropped LIMIT 1")
    for rewrites in (Rewrites(drop_unasked_limits=False), Rewrites(fix_identifiers=False)):
        kept = check_candidate(
            reply, dialects=SQLITE, schema=schema, validate=True, target=target, asked=follow_up, rewrites=rewrites
        )
        assert kept.ok and kept.answer_sql.endswith("LIMIT 1")
    first = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target,
                            asked=Asked(question="what about France?"))
    assert first.answer_sql.endswith("LIMIT 1")  # a first question: nothing to compare with
