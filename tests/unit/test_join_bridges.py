"""Bridged joins: a join that compares a column with itself is joined along the one shortest way of foreign keys
instead, with no model call, and left alone when no way or two ways fit. The mended queries run on a real SQLite
file and return what the intended query returns."""

from __future__ import annotations

import pytest

from tests.sqlite_files import sqlite_database
from text2sql.execution import execute_read_only
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.join_bridges import bridge_joins, compares_itself
from text2sql.pipeline.rewrites import Rewrites
from text2sql.schema.introspect import introspect

DDL = """
CREATE TABLE artist (ArtistId INTEGER PRIMARY KEY, Name TEXT);
CREATE TABLE album (AlbumId INTEGER PRIMARY KEY, Title TEXT, ArtistId INTEGER REFERENCES artist(ArtistId));
CREATE TABLE genre (GenreId INTEGER PRIMARY KEY, Name TEXT);
CREATE TABLE track (TrackId INTEGER PRIMARY KEY, Name TEXT, AlbumId INTEGER REFERENCES album(AlbumId),
                    GenreId INTEGER REFERENCES genre(GenreId));
CREATE TABLE playlist_track (PlaylistId INTEGER, TrackId INTEGER REFERENCES track(TrackId));
CREATE TABLE person (id INTEGER PRIMARY KEY, name TEXT, boss_id INTEGER REFERENCES person(id));
CREATE TABLE project (id INTEGER PRIMARY KEY, title TEXT);
CREATE TABLE leads (person_id INTEGER REFERENCES person(id), project_id INTEGER REFERENCES project(id));
CREATE TABLE works_on (person_id INTEGER REFERENCES person(id), project_id INTEGER REFERENCES project(id));
INSERT INTO artist VALUES (1, 'AC/DC'), (2, 'Miles'), (3, 'Nobody');
INSERT INTO album VALUES (1, 'Back', 1), (2, 'Blue', 2), (3, 'Live', 1);
INSERT INTO genre VALUES (1, 'Rock'), (2, 'Jazz'), (3, 'Pop');
INSERT INTO track VALUES (1, 'Hells', 1, 1), (2, 'Shook', 1, 1), (3, 'So What', 2, 2), (4, 'Thunder', 3, 1);
INSERT INTO playlist_track VALUES (1, 1), (1, 2), (2, 1), (2, 4);
INSERT INTO person VALUES (1, 'Ada', NULL), (2, 'Bo', 1);
INSERT INTO project VALUES (1, 'X'), (2, 'Y');
INSERT INTO leads VALUES (1, 1);
INSERT INTO works_on VALUES (2, 1), (2, 2);
"""
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("bridges") / "music.sqlite", DDL)


@pytest.fixture(scope="module")
def schema(database: str):
    return introspect(database)


def rows(database: str, sql: str) -> list[tuple]:
    return sorted(tuple(row) for row in execute_read_only(database, sql, max_rows=100, timeout_s=5).rows)


def test_one_table_between_is_joined_in_and_the_rows_are_the_intended_ones(database, schema) -> None:
    broken = (
        "SELECT T1.Title, COUNT(*) FROM album AS T1 JOIN playlist_track AS T2 ON T1.AlbumId = T1.AlbumId "
        "GROUP BY T1.Title"
    )
    sql, changes = bridge_joins(broken, dialect="sqlite", schema=schema)
    assert sql == (
        "SELECT T1.Title, COUNT(*) FROM album AS T1 JOIN track ON T1.AlbumId = track.AlbumId "
        "JOIN playlist_track AS T2 ON track.TrackId = T2.TrackId GROUP BY T1.Title"
    )
    assert changes == [
        "ON T1.AlbumId = T1.AlbumId -> JOIN track ON T1.AlbumId = track.AlbumId "
        "JOIN playlist_track AS T2 ON track.TrackId = T2.TrackId"
    ]
    assert rows(database, sql) == [("Back", 3), ("Live", 1)]
    assert rows(database, broken) == [("Back", 4), ("Blue", 4), ("Live", 4)]  # every pair: what was wrong


def test_a_direct_key_replaces_the_condition(database, schema) -> None:
    sql, _ = bridge_joins(
        "SELECT T2.Title FROM artist AS T1 INNER JOIN album AS T2 ON T2.ArtistId = T2.ArtistId WHERE T1.Name = 'AC/DC'",
        dialect="sqlite", schema=schema,
    )  # fmt: skip
    assert sql == (
        "SELECT T2.Title FROM artist AS T1 INNER JOIN album AS T2 ON T1.ArtistId = T2.ArtistId WHERE T1.Name = 'AC/DC'"
    )
    assert rows(database, sql) == [("Back",), ("Live",)]


def test_two_tables_between_and_later_joins_keep_their_own_conditions(database, schema) -> None:
    sql, _ = bridge_joins(
        "SELECT DISTINCT T1.Name FROM artist AS T1 JOIN genre AS T2 ON T1.ArtistId = T1.ArtistId "
        "JOIN playlist_track AS T3 ON T3.TrackId = T3.TrackId WHERE T2.Name = 'Rock'",
        dialect="sqlite", schema=schema,
    )  # fmt: skip
    # Genre is reached over album and track; playlist_track then hangs directly off track, now in the query.
    assert sql == (
        "SELECT DISTINCT T1.Name FROM artist AS T1 JOIN album ON T1.ArtistId = album.ArtistId "
        "JOIN track ON album.AlbumId = track.AlbumId JOIN genre AS T2 ON track.GenreId = T2.GenreId "
        "JOIN playlist_track AS T3 ON track.TrackId = T3.TrackId WHERE T2.Name = 'Rock'"
    )
    assert rows(database, sql) == [("AC/DC",)]


def test_an_outer_join_stays_outer_through_the_tables_between(database, schema) -> None:
    sql, _ = bridge_joins(
        "SELECT T1.Name FROM genre AS T1 LEFT JOIN playlist_track AS T2 ON T1.GenreId = T1.GenreId "
        "WHERE T2.TrackId IS NULL",
        dialect="sqlite", schema=schema,
    )  # fmt: skip
    assert "LEFT JOIN track ON T1.GenreId = track.GenreId LEFT JOIN playlist_track AS T2" in sql
    assert rows(database, sql) == [("Jazz",), ("Pop",)]


@pytest.mark.parametrize(
    "sql",
    [
        # Two ways of the same length (leads, works_on): which one was meant is not the keys' to say.
        "SELECT T1.name FROM person AS T1 JOIN project AS T2 ON T1.id = T1.id WHERE T2.title = 'X'",
        # A table joined to itself.
        "SELECT a.name FROM person AS a JOIN person AS b ON a.boss_id = a.boss_id",
        # The only table between is already in the query, later.
        "SELECT T1.Title FROM album AS T1 JOIN playlist_track AS T2 ON T1.AlbumId = T1.AlbumId "
        "JOIN track AS T3 ON T2.TrackId = T3.TrackId",
        # More than two tables between (artist to playlist_track needs album and track: two; person to genre: none).
        "SELECT T1.name FROM person AS T1 JOIN genre AS T2 ON T1.id = T1.id",
        # Real conditions, or a self-comparison beside one.
        "SELECT T1.Title FROM album AS T1 JOIN track AS T2 ON T1.AlbumId = T2.AlbumId",
        "SELECT T1.Title FROM album AS T1 JOIN track AS T2 ON T1.AlbumId = T2.AlbumId AND T1.Title = T1.Title",
    ],
)
def test_nothing_changes_when_no_single_way_fits(schema, sql: str) -> None:
    assert bridge_joins(sql, dialect="sqlite", schema=schema) is None


def test_a_self_comparison_is_a_column_against_itself_only() -> None:
    import sqlglot

    assert compares_itself(sqlglot.parse_one("a.x = A.X"))
    assert compares_itself(sqlglot.parse_one("x = x"))
    assert not compares_itself(sqlglot.parse_one("a.x = b.x"))
    assert not compares_itself(sqlglot.parse_one("a.x = a.y"))
    assert not compares_itself(sqlglot.parse_one("a.x >= a.x"))
    assert not compares_itself(None)


def test_the_candidate_check_runs_the_bridged_query_and_reports_it(database, schema) -> None:
    target = ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5)
    reply = "SELECT DISTINCT T1.Name FROM artist AS T1 JOIN track AS T2 ON T1.ArtistId = T1.ArtistId WHERE T2.GenreId = 2"
    outcome = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target)
    assert outcome.ok and outcome.joined
    assert outcome.answer_sql == (
        "SELECT DISTINCT T1.Name FROM artist AS T1 JOIN album ON T1.ArtistId = album.ArtistId "
        "JOIN track AS T2 ON album.AlbumId = T2.AlbumId WHERE T2.GenreId = 2"
    )
    assert outcome.fixes == [
        "ON T1.ArtistId = T1.ArtistId -> JOIN album ON T1.ArtistId = album.ArtistId "
        "JOIN track AS T2 ON album.AlbumId = T2.AlbumId"
    ]
    assert [tuple(r) for r in outcome.result.rows] == [("Miles",)]

    # Switched off (or with fix_identifiers off), the query runs as written: every artist, whatever the genre.
    for switches in ({"bridge_joins": False}, {"fix_identifiers": False}):
        plain = check_candidate(
            reply, dialects=SQLITE, schema=schema, validate=True, target=target, rewrites=Rewrites(**switches)
        )
        assert plain.ok and not plain.fixes and not plain.joined
        assert sorted(tuple(r) for r in plain.result.rows) == [("AC/DC",), ("Miles",), ("Nobody",)]
