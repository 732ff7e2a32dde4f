"""Filters no row can meet (one column asked for two values) become one query per value, intersected: the entities
that have both. The queries run on a real SQLite file."""

from __future__ import annotations

import pytest

from tests.sqlite_files import sqlite_database
from text2sql.execution import execute_read_only
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.conflicting_filters import split_conflicting_filters
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.rewrites import Rewrites
from text2sql.schema.introspect import introspect

DDL = """
CREATE TABLE country (Code TEXT PRIMARY KEY, Name TEXT);
CREATE TABLE language (CountryCode TEXT REFERENCES country(Code), Language TEXT, IsOfficial TEXT);
INSERT INTO country VALUES ('CAN', 'Canada'), ('BEL', 'Belgium'), ('FRA', 'France'), ('USA', 'United States');
INSERT INTO language VALUES ('CAN', 'English', 'T'), ('CAN', 'French', 'T'), ('BEL', 'French', 'T'),
  ('BEL', 'Dutch', 'T'), ('FRA', 'French', 'T'), ('USA', 'English', 'T'), ('USA', 'French', 'F');
"""
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")
JOIN = "FROM country AS T1 JOIN language AS T2 ON T1.Code = T2.CountryCode"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("conflicts") / "world.sqlite", DDL)


def rows(database: str, sql: str) -> list[tuple]:
    return sorted(tuple(row) for row in execute_read_only(database, sql, max_rows=100, timeout_s=5).rows)


def test_two_values_of_one_column_are_asked_apart_and_intersected(database) -> None:
    never = f"SELECT T1.Name {JOIN} WHERE T2.Language = 'English' AND T2.IsOfficial = 'T' AND T2.Language = 'French'"
    sql, notes = split_conflicting_filters(never, dialect="sqlite")
    assert sql == (
        f"SELECT T1.Name {JOIN} WHERE T2.IsOfficial = 'T' AND T2.Language = 'English' "
        f"INTERSECT SELECT T1.Name {JOIN} WHERE T2.IsOfficial = 'T' AND T2.Language = 'French'"
    )
    assert notes == ["T2.Language was asked for 'English' and 'French' in one row: each asked apart, then intersected"]
    assert rows(database, never) == []
    assert rows(database, sql) == [("Canada",)]  # the USA's French is not official


@pytest.mark.parametrize("count", ["COUNT(DISTINCT T2.CountryCode)", "COUNT(T1.Code)"])
def test_a_lone_count_counts_the_intersection(database, count: str) -> None:
    sql, _ = split_conflicting_filters(
        f"SELECT {count} {JOIN} WHERE T2.Language = 'English' AND T2.Language = 'French'", dialect="sqlite"
    )
    assert sql.startswith("SELECT COUNT(*) FROM (SELECT T")
    assert rows(database, sql) == [(2,)]  # Canada and the United States


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT T1.Name {JOIN} WHERE T2.Language = 'English' OR T2.Language = 'French'",  # either: fine as it is
        f"SELECT T1.Name {JOIN} WHERE T2.Language = 'French' AND T2.Language = 'French'",  # the same value twice
        "SELECT CountryCode FROM language WHERE Language = 'English' AND Language = 'French'",  # no join: no entity
        f"SELECT COUNT(*) {JOIN} WHERE T2.Language = 'English' AND T2.Language = 'French'",  # counts no column
        f"SELECT T1.Name, COUNT(*) {JOIN} WHERE T2.Language = 'English' AND T2.Language = 'Dutch' GROUP BY T1.Name",
        f"SELECT T1.Name {JOIN} WHERE T2.Language = 'English' AND T2.Language = 'Dutch' ORDER BY T1.Name LIMIT 1",
        f"SELECT T1.Name {JOIN} WHERE T2.Language = 'English' AND T2.Language = 'Dutch' "
        "AND T2.IsOfficial = 'T' AND T2.IsOfficial = 'F'",  # two columns in conflict: which pairs is unclear
    ],
)
def test_what_is_not_one_column_asked_twice_stays(sql: str) -> None:
    assert split_conflicting_filters(sql, dialect="sqlite") is None


def test_the_candidate_check_intersects_unless_switched_off(database) -> None:
    schema = introspect(database)
    target = ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5)
    reply = f"SELECT T1.Name {JOIN} WHERE T2.Language = 'French' AND T2.Language = 'Dutch'"
    split = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target)
    assert split.ok and "INTERSECT" in split.answer_sql and [tuple(r) for r in split.result.rows] == [("Belgium",)]
    for switches in ({"intersect_conflicting_filters": False}, {"fix_identifiers": False}):
        kept = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target, rewrites=Rewrites(**switches))
        assert kept.ok and not kept.fixes and kept.result.rows == []
