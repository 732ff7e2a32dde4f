"""A bare id where the question asked for a thing: the answer shows the table's one name column instead, its own
(`SELECT PlaylistId FROM Playlist` becomes `SELECT Name ...`) or, for a foreign key, the referenced table's (a LEFT
JOIN on the key, so the rows stay the same). Kept when the question asks for ids, codes or numbers, when the key
is itself a name or a code, and when the table has no single name column. The queries run on a real SQLite file."""

from __future__ import annotations

import pytest

from tests.sqlite_files import sqlite_database
from text2sql.execution import execute_read_only
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.key_names import name_unasked_keys
from text2sql.pipeline.rewrites import Asked, Rewrites
from text2sql.schema.introspect import introspect

DDL = """
CREATE TABLE genre (GenreId INTEGER PRIMARY KEY, Name TEXT);
CREATE TABLE track (TrackId INTEGER PRIMARY KEY, Name TEXT, GenreId INTEGER REFERENCES genre(GenreId),
                    Bytes INTEGER);
CREATE TABLE playlist (PlaylistId INTEGER PRIMARY KEY, Name TEXT);
CREATE TABLE playlist_track (PlaylistId INTEGER REFERENCES playlist(PlaylistId),
                             TrackId INTEGER REFERENCES track(TrackId));
CREATE TABLE employee (EmployeeId INTEGER PRIMARY KEY, FirstName TEXT, LastName TEXT);
CREATE TABLE song (song_name TEXT PRIMARY KEY, artist_name TEXT);
INSERT INTO genre VALUES (1, 'Rock'), (2, 'Jazz');
INSERT INTO track VALUES (1, 'Hells', 1, 500), (2, 'Shook', 1, 900), (3, 'So What', 2, 700), (4, 'Noise', NULL, 100);
INSERT INTO playlist VALUES (1, 'Music'), (2, 'Empty');
INSERT INTO playlist_track VALUES (1, 1), (1, 2), (1, 3);
INSERT INTO employee VALUES (1, 'Jane', 'Peacock');
INSERT INTO song VALUES ('Blue', 'Miles');
"""
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("keys") / "music.sqlite", DDL)


@pytest.fixture(scope="module")
def schema(database):
    return introspect(database)


def rows(database: str, sql: str) -> list[tuple]:
    result = execute_read_only(database, sql, max_rows=100, timeout_s=5).rows
    return sorted((tuple(row) for row in result), key=repr)


def test_a_tables_own_key_is_shown_by_its_name(database, schema) -> None:
    sql, notes = name_unasked_keys(
        "SELECT PlaylistId FROM playlist WHERE NOT PlaylistId IN (SELECT PlaylistId FROM playlist_track)",
        dialect="sqlite", schema=schema, question="Which playlists are empty?",
    )
    assert rows(database, sql) == [("Empty",)]
    assert notes == ["showed playlist.PlaylistId by Name: the question asks for the playlist, not its id"]
    # Qualified, under an alias, with an order and a limit: the same row, by its name.
    sql, _ = name_unasked_keys(
        "SELECT T1.TrackId FROM track AS T1 ORDER BY T1.Bytes DESC LIMIT 1",
        dialect="sqlite", schema=schema, question="Which track takes up the most disk space?",
    )
    assert sql == "SELECT T1.Name FROM track AS T1 ORDER BY T1.Bytes DESC LIMIT 1"


def test_a_foreign_key_is_shown_by_the_name_of_the_row_it_references(database, schema) -> None:
    sql, notes = name_unasked_keys(
        "SELECT GenreId, COUNT(*) FROM track GROUP BY GenreId",
        dialect="sqlite", schema=schema, question="How many tracks does each genre have?",
    )
    # A LEFT JOIN: the track without a genre keeps its group, its name NULL; the name joins the grouping.
    assert rows(database, sql) == sorted([("Rock", 2), ("Jazz", 1), (None, 1)], key=repr)
    assert "LEFT JOIN genre ON track.GenreId = genre.GenreId" in sql and sql.endswith("GROUP BY track.GenreId, genre.Name")
    assert notes == ["showed track.GenreId by genre.Name: the question asks for the genre, not its id"]


def test_unqualified_columns_are_qualified_before_a_table_with_the_same_names_is_joined(database, schema) -> None:
    sql, _ = name_unasked_keys(
        "SELECT Name, GenreId FROM track WHERE Bytes > 600",
        dialect="sqlite", schema=schema, question="Big tracks, with their genre",
    )
    assert sql == (
        "SELECT track.Name, genre.Name FROM track LEFT JOIN genre ON track.GenreId = genre.GenreId "
        "WHERE track.Bytes > 600"
    )
    assert rows(database, sql) == [("Shook", "Rock"), ("So What", "Jazz")]


@pytest.mark.parametrize(
    ("sql", "question"),
    [
        # The question asks for ids, codes or numbers (in English or Chinese).
        ("SELECT PlaylistId FROM playlist", "What are the ids of all playlists?"),
        ("SELECT PlaylistId FROM playlist", "List the playlist IDs."),
        ("SELECT PlaylistId FROM playlist", "Give me each playlist's number"),
        ("SELECT PlaylistId FROM playlist", "列出所有播放列表的编号"),
        # The name is shown already.
        ("SELECT PlaylistId, Name FROM playlist", "Which playlists are there?"),
        # The key is itself a name; the table has two name columns, or none.
        ("SELECT song_name FROM song", "Which songs are there?"),
        ("SELECT EmployeeId FROM employee", "Who works here?"),
        # The referenced table is joined already: which of its rows the key means is the query's own business.
        ("SELECT T1.GenreId FROM track AS T1 JOIN genre AS T2 ON T1.GenreId = T2.GenreId", "Which genres have tracks?"),
        # A set operation's branches keep their columns alike.
        ("SELECT PlaylistId FROM playlist UNION SELECT PlaylistId FROM playlist_track", "Which playlists are there?"),
        # DISTINCT rows ordered by the key: PostgreSQL orders them only by a column they show.
        ("SELECT DISTINCT T1.TrackId FROM track AS T1 ORDER BY T1.TrackId", "Which tracks are there, in order?"),
        # A column that is not a key, and a key inside an aggregate.
        ("SELECT Bytes FROM track", "How big is each track?"),
        ("SELECT COUNT(TrackId) FROM track", "How many tracks are there?"),
    ],
)
def test_what_is_left_as_it_is(schema, sql: str, question: str) -> None:
    assert name_unasked_keys(sql, dialect="sqlite", schema=schema, question=question) is None


def test_the_number_of_things_is_a_count_not_a_key(schema) -> None:
    sql, _ = name_unasked_keys(
        "SELECT GenreId FROM track GROUP BY GenreId ORDER BY COUNT(*) DESC LIMIT 1",
        dialect="sqlite", schema=schema, question="Which genre has the largest number of tracks?",
    )
    assert sql.startswith("SELECT genre.Name FROM track LEFT JOIN genre")


def test_no_question_no_change(schema) -> None:
    assert name_unasked_keys("SELECT PlaylistId FROM playlist", dialect="sqlite", schema=schema, question=None) is None


def test_the_candidate_check_shows_names_unless_switched_off(database, schema) -> None:
    target = ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5)
    asked = Asked(question="Which playlists are empty?")
    reply = "SELECT PlaylistId FROM playlist WHERE PlaylistId NOT IN (SELECT PlaylistId FROM playlist_track)"
    named = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target, asked=asked)
    assert named.ok and [tuple(r) for r in named.result.rows] == [("Empty",)]
    assert any("showed playlist.PlaylistId by Name" in fix for fix in named.fixes)
    for switches in ({"name_unasked_keys": False}, {"fix_identifiers": False}):
        kept = check_candidate(
            reply, dialects=SQLITE, schema=schema, validate=True, target=target, asked=asked,
            rewrites=Rewrites(**switches),
        )
        assert kept.ok and [tuple(r) for r in kept.result.rows] == [(2,)]
