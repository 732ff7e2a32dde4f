"""Literals checked against the data: a string compared with a text column that never holds it moves to the one
other column of the table that does, or takes the one spelling the data has; the database is asked, read-only.
The queries run on a real SQLite file."""

from __future__ import annotations

import pytest

from tests.sqlite_files import sqlite_database
from text2sql.execution import execute_read_only
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.literal_columns import relink_literals
from text2sql.pipeline.rewrites import Rewrites
from text2sql.pipeline.value_probe import DatabaseProbe
from text2sql.schema.introspect import introspect

DDL = """
CREATE TABLE country (Code TEXT PRIMARY KEY, Name TEXT, Continent TEXT, Region TEXT, Population INTEGER,
                      Founded TEXT);
CREATE TABLE language (CountryCode TEXT REFERENCES country(Code), Language TEXT, IsOfficial TEXT);
INSERT INTO country VALUES
  ('JPN', 'Japan', 'Asia', 'Eastern Asia', 126, '1947-05-03'),
  ('IND', 'India', 'Asia', 'Southern and Central Asia', 1380, '1950-01-26'),
  ('FRA', 'France', 'Europe', 'Western Europe', 67, '1958-10-04'),
  ('EGY', 'Egypt', 'Africa', 'Northern Africa', 100, '1953-06-18'),
  ('ASA', 'Asia Minor', 'Europe', 'Asia', 1, NULL);
INSERT INTO language VALUES ('JPN', 'Japanese', 'T'), ('IND', 'Hindi', 'T'), ('IND', 'English', 'T'),
  ('FRA', 'French', 'T'), ('EGY', 'Arabic', 'T'), ('EGY', 'english', 'F');
"""
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("literals") / "world.sqlite", DDL)


@pytest.fixture(scope="module")
def schema(database: str):
    return introspect(database)


def relinked(database: str, schema, sql: str):
    return relink_literals(sql, dialect="sqlite", schema=schema, probe=DatabaseProbe(database, "sqlite"))


def rows(database: str, sql: str) -> list[tuple]:
    return sorted(tuple(row) for row in execute_read_only(database, sql, max_rows=100, timeout_s=5).rows)


def test_a_literal_the_column_never_holds_moves_to_the_column_that_does(database, schema) -> None:
    wrong = "SELECT SUM(Population) FROM country WHERE Continent = 'Western Europe'"
    sql, notes = relinked(database, schema, wrong)
    assert sql == "SELECT SUM(Population) FROM country WHERE Region = 'Western Europe'"
    assert notes == ["compared country.Region instead of country.Continent, which holds none of 'Western Europe'"]
    assert rows(database, wrong) == [(None,)] and rows(database, sql) == [(67,)]


def test_an_in_list_moves_only_when_one_column_holds_every_literal(database, schema) -> None:
    sql, _ = relinked(database, schema, "SELECT Name FROM country AS T1 WHERE T1.Region IN ('Africa', 'Europe')")
    assert sql == "SELECT Name FROM country AS T1 WHERE T1.Continent IN ('Africa', 'Europe')"
    assert rows(database, sql) == [("Asia Minor",), ("Egypt",), ("France",)]
    # 'Japan' is a Name and 'Asia' both a Continent and a Region: no one column holds both.
    assert relinked(database, schema, "SELECT Code FROM country WHERE Region IN ('Japan', 'Asia')") is None


def test_a_literal_two_other_columns_hold_stays(database, schema) -> None:
    # 'Asia' is a continent and also the region of 'Asia Minor': which one was meant is not the data's to say.
    assert relinked(database, schema, "SELECT COUNT(*) FROM country WHERE Name = 'Asia'") is None


def test_a_literal_is_respelled_only_to_the_one_value_that_differs_in_case(database, schema) -> None:
    sql, notes = relinked(database, schema, "SELECT Code FROM country WHERE Name = 'egypt'")
    assert sql == "SELECT Code FROM country WHERE Name = 'Egypt'"
    assert notes == ["spelled 'egypt' as the data does: 'Egypt'"]
    # The data holds both 'English' and 'english': neither is the answer, so 'ENGLISH' stays.
    assert relinked(database, schema, "SELECT CountryCode FROM language WHERE Language = 'ENGLISH'") is None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT Name FROM country WHERE Continent = 'Asia'",  # the column holds it
        "SELECT Name FROM country WHERE Population = '126'",  # not a text column
        "SELECT Name FROM country WHERE Founded = '1947-05-03 00:00'",  # a date written as a string
        "SELECT Name FROM country WHERE Continent LIKE 'Western%'",  # a pattern, not a value
        "SELECT T1.Name FROM country AS T1 JOIN language AS T2 ON T1.Code = T2.CountryCode "
        "WHERE Name = 'Hindi'",  # no other column of its table holds it (the other table's does: left alone)
    ],
)
def test_what_the_data_cannot_settle_stays(database, schema, sql: str) -> None:
    assert relinked(database, schema, sql) is None


def test_a_subquery_literal_is_judged_against_its_own_tables(database, schema) -> None:
    sql, _ = relinked(
        database, schema,
        "SELECT Name FROM country WHERE Code IN (SELECT CountryCode FROM language WHERE IsOfficial = 'Arabic')",
    )
    assert sql == "SELECT Name FROM country WHERE Code IN (SELECT CountryCode FROM language WHERE Language = 'Arabic')"


def test_a_probe_that_fails_changes_nothing(schema, tmp_path) -> None:
    missing = f"sqlite:///{tmp_path / 'gone.sqlite'}"
    assert relinked(missing, schema, "SELECT Name FROM country WHERE Continent = 'Western Europe'") is None


def test_the_candidate_check_relinks_only_where_the_query_may_run(database, schema) -> None:
    target = ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5)
    reply = "SELECT COUNT(*) FROM country WHERE Region = 'Asia Minor'"
    checked = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target)
    assert checked.ok and checked.answer_sql == "SELECT COUNT(*) FROM country WHERE Name = 'Asia Minor'"
    assert [tuple(r) for r in checked.result.rows] == [(1,)]
    assert checked.fixes == ["compared country.Name instead of country.Region, which holds none of 'Asia Minor'"]
    for switches in ({"relink_literals": False}, {"fix_identifiers": False}):
        kept = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target, rewrites=Rewrites(**switches))
        assert kept.ok and not kept.fixes and [tuple(r) for r in kept.result.rows] == [(0,)]
    unexecuted = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=None)
    assert unexecuted.ok and unexecuted.answer_sql == reply


def test_a_spent_probe_budget_changes_nothing(database, schema) -> None:
    probe = DatabaseProbe(database, "sqlite", budget_s=0)
    wrong = "SELECT SUM(Population) FROM country WHERE Continent = 'Western Europe'"
    assert relink_literals(wrong, dialect="sqlite", schema=schema, probe=probe) is None
