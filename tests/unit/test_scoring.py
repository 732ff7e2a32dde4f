"""text2sql.scoring: gold results run once, and each benchmark's rule, on a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from text2sql.scoring import RULES, GoldResults, judge, rule_of_suite


@pytest.fixture
def url(tmp_path) -> str:
    path = tmp_path / "pets.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT, age INTEGER);"
            "INSERT INTO pets VALUES (1, 'Rex', 3), (2, 'Tom', 5), (3, 'Kit', 1);"
        )
    connection.close()
    return f"sqlite:///{path}"


def test_extra_columns_are_right_by_sql_evals_rule_only(url):
    gold = GoldResults(lambda _: url)
    verdict = judge(gold, database="pets", gold_sql="SELECT name FROM pets", dialect="sqlite",
                    result=(["id", "name"], [[1, "Rex"], [2, "Tom"], [3, "Kit"]]))
    assert verdict == {"spider": False, "sql-eval": True}


def test_row_order_counts_only_when_the_gold_query_orders(url):
    gold = GoldResults(lambda _: url)
    reversed_rows = (["name"], [["Kit"], ["Tom"], ["Rex"]])
    assert all(judge(gold, database="pets", gold_sql="SELECT name FROM pets", dialect="sqlite", result=reversed_rows).values())
    ordered = "SELECT name FROM pets ORDER BY age DESC"
    assert not any(judge(gold, database="pets", gold_sql=ordered, dialect="sqlite", result=reversed_rows).values())
    assert all(judge(gold, database="pets", gold_sql=ordered, dialect="sqlite",
                     result=(["name"], [["Tom"], ["Rex"], ["Kit"]])).values())


def test_gold_runs_once_per_query_and_a_broken_gold_is_never_matched(url):
    asked = []
    gold = GoldResults(lambda name: asked.append(name) or url)
    for _ in range(3):
        judge(gold, database="pets", gold_sql="SELECT COUNT(*) FROM pets", dialect="sqlite", result=(["c"], [[3]]))
    assert asked == ["pets"]
    assert judge(gold, database="pets", gold_sql="SELECT nope FROM pets", dialect="sqlite",
                 result=(["c"], [[3]])) == dict.fromkeys(RULES, False)


def test_each_suite_has_its_own_rule():
    assert rule_of_suite("spider-zh") == "spider" and rule_of_suite("chinook") == "sql-eval"
