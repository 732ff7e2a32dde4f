"""Unused joins: where a query sums or averages, an inner join of a many-side table that nothing reads
repeats and filters the aggregated rows; it is dropped with no model call, and kept whenever it may be the
question's own filter or is read anywhere. In a plain level (no count, no DISTINCT, no set operation) such a join
goes too when the question does not name its table. The queries run on a real SQLite file."""

from __future__ import annotations

import pytest

from tests.sqlite_files import sqlite_database
from text2sql.execution import execute_read_only
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.rewrites import Asked, Rewrites
from text2sql.pipeline.unused_joins import drop_unnamed_joins, drop_unused_joins
from text2sql.schema.introspect import introspect

DDL = """
CREATE TABLE album (AlbumId INTEGER PRIMARY KEY, Title TEXT);
CREATE TABLE track (TrackId INTEGER PRIMARY KEY, Name TEXT, AlbumId INTEGER REFERENCES album(AlbumId),
                    Milliseconds INTEGER);
CREATE TABLE playlist_track (PlaylistId INTEGER, TrackId INTEGER REFERENCES track(TrackId));
CREATE TABLE invoice (InvoiceId INTEGER PRIMARY KEY, Country TEXT, Total REAL);
CREATE TABLE invoice_line (LineId INTEGER PRIMARY KEY, InvoiceId INTEGER REFERENCES invoice(InvoiceId),
                           Quantity INTEGER);
CREATE TABLE live_album (AlbumId INTEGER PRIMARY KEY REFERENCES album(AlbumId), Venue TEXT);
INSERT INTO album VALUES (1, 'Back'), (2, 'Blue');
INSERT INTO track VALUES (1, 'Hells', 1, 1000), (2, 'Shook', 1, 2000), (3, 'So What', 2, 6000);
INSERT INTO playlist_track VALUES (1, 1), (2, 1), (3, 1), (1, 2);
INSERT INTO invoice VALUES (1, 'DE', 10.0), (2, 'DE', 4.0), (3, 'FR', 1.0);
INSERT INTO invoice_line VALUES (1, 1, 1), (2, 1, 1), (3, 1, 2), (4, 2, 1), (5, 3, 1);
INSERT INTO live_album VALUES (2, 'Newport');
"""
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("unused") / "shop.sqlite", DDL)


@pytest.fixture(scope="module")
def schema(database: str):
    return introspect(database)


def rows(database: str, sql: str) -> list[tuple]:
    return sorted(tuple(row) for row in execute_read_only(database, sql, max_rows=100, timeout_s=5).rows)


def test_an_unread_many_side_join_under_an_average_is_dropped(database, schema) -> None:
    broken = (
        "SELECT AVG(T1.Milliseconds) FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId"
    )
    sql, notes = drop_unused_joins(broken, dialect="sqlite", schema=schema)
    assert sql == "SELECT AVG(T1.Milliseconds) FROM track AS T1"
    assert notes == ["dropped the unused join JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId"]
    assert rows(database, sql) == [(3000.0,)]
    assert rows(database, broken) == [(1250.0,)]  # track 1 four times over, track 3 not at all


def test_an_unread_from_table_gives_its_place_to_the_first_join(database, schema) -> None:
    broken = (
        "SELECT T2.Country, SUM(T2.Total) FROM invoice_line AS T1 JOIN invoice AS T2 ON T1.InvoiceId = T2.InvoiceId "
        "GROUP BY T2.Country"
    )
    sql, notes = drop_unused_joins(broken, dialect="sqlite", schema=schema)
    assert sql == "SELECT T2.Country, SUM(T2.Total) FROM invoice AS T2 GROUP BY T2.Country"
    assert notes == [
        "dropped the unused invoice_line AS T1 and its join condition T1.InvoiceId = T2.InvoiceId"
    ]
    assert rows(database, sql) == [("DE", 14.0), ("FR", 1.0)]
    assert rows(database, broken) == [("DE", 34.0), ("FR", 1.0)]  # invoice 1 counted once per line


@pytest.mark.parametrize(
    "sql",
    [
        # No aggregate: the join may be the question's filter ("tracks that are on a playlist").
        "SELECT T1.Name FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId",
        # Repetition does not change a DISTINCT count ("how many tracks are on a playlist"), nor MIN or MAX.
        "SELECT COUNT(DISTINCT T1.TrackId) FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId",
        "SELECT MAX(T1.Milliseconds) FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId",
        # The joined table is read: in the select list, the WHERE clause, or a subquery.
        "SELECT COUNT(T2.PlaylistId) FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId",
        "SELECT COUNT(*) FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId WHERE T2.PlaylistId = 1",
        "SELECT COUNT(*) FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId "
        "WHERE T1.TrackId IN (SELECT TrackId FROM track WHERE T2.PlaylistId = 1)",
        # An unqualified name the joined table has might be read from it.
        "SELECT COUNT(*) FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId WHERE PlaylistId = 1",
        # The one side: each track meets its one album, so nothing repeats.
        "SELECT AVG(T2.Milliseconds) FROM album AS T1 JOIN track AS T2 ON T1.AlbumId = T2.AlbumId",
        # An outer join, and a condition that is not the foreign key.
        "SELECT AVG(T1.Milliseconds) FROM track AS T1 LEFT JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId",
        "SELECT AVG(T1.Milliseconds) FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.PlaylistId",
        # A bare star reads every table.
        "SELECT *, COUNT(*) FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId",
        # A count over the join counts the joined rows, which is what it asks ("how many lines does each invoice
        # have"; in the select list, HAVING or ORDER BY).
        "SELECT T1.InvoiceId, COUNT(*) FROM invoice AS T1 JOIN invoice_line AS T2 ON T1.InvoiceId = T2.InvoiceId "
        "GROUP BY T1.InvoiceId",
        "SELECT COUNT(*) FROM invoice AS T1 JOIN invoice_line AS T2 ON T1.InvoiceId = T2.InvoiceId WHERE T1.Country = 'DE'",
        "SELECT T1.Country, SUM(T1.Total) FROM invoice AS T1 JOIN invoice_line AS T2 ON T1.InvoiceId = T2.InvoiceId "
        "GROUP BY T1.Country ORDER BY COUNT(*) DESC",
        # The joined table's key is the reference: one row per album at most, so nothing repeats; it filters.
        "SELECT AVG(T1.AlbumId) FROM album AS T1 JOIN live_album AS T2 ON T1.AlbumId = T2.AlbumId",
    ],
)
def test_a_join_that_may_be_meant_or_is_read_stays(schema, sql: str) -> None:
    assert drop_unused_joins(sql, dialect="sqlite", schema=schema) is None


def test_the_candidate_check_drops_the_join_unless_switched_off(database, schema) -> None:
    target = ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5)
    reply = "SELECT SUM(T2.Total) FROM invoice_line AS T1 JOIN invoice AS T2 ON T1.InvoiceId = T2.InvoiceId"
    dropped = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target)
    assert dropped.ok and dropped.answer_sql == "SELECT SUM(T2.Total) FROM invoice AS T2"
    assert [tuple(r) for r in dropped.result.rows] == [(15.0,)]
    for switches in ({"drop_unused_joins": False}, {"fix_identifiers": False}):
        kept = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target, rewrites=Rewrites(**switches))
        assert kept.ok and not kept.fixes and [tuple(r) for r in kept.result.rows] == [(35.0,)]


LONGEST = "SELECT T1.Name FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId ORDER BY T1.Milliseconds DESC LIMIT 2"


@pytest.mark.parametrize("question", ["Which two songs last longest?", "最长的两首歌是哪些？"])
def test_an_unread_join_the_question_does_not_name_is_dropped(database, schema, question: str) -> None:
    sql, notes = drop_unnamed_joins(LONGEST, dialect="sqlite", schema=schema, question=question)
    assert sql == "SELECT T1.Name FROM track AS T1 ORDER BY T1.Milliseconds DESC LIMIT 2"
    assert notes == ["dropped the unused join JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId"]
    assert rows(database, sql) == [("Shook",), ("So What",)]
    assert rows(database, LONGEST) == [("Hells",), ("Shook",)]  # So What is on no playlist


def test_a_word_the_question_gives_another_table_does_not_name_the_join(database, schema) -> None:
    # "tracks" names track, already in the query; of playlist_track's words only "playlist" would name it.
    sql, _ = drop_unnamed_joins(LONGEST, dialect="sqlite", schema=schema, question="Which two tracks last longest?")
    assert sql == "SELECT T1.Name FROM track AS T1 ORDER BY T1.Milliseconds DESC LIMIT 2"


def test_a_subquery_reads_its_own_tables_columns_not_the_joined_ones(database, schema) -> None:
    # The subquery's unqualified TrackId is its own track's: playlist_track, beside it above, is read by no one.
    joined = (
        "SELECT T1.Name FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId "
        "WHERE T1.TrackId IN (SELECT TrackId FROM track WHERE Milliseconds > 1500)"
    )
    sql, _ = drop_unnamed_joins(joined, dialect="sqlite", schema=schema, question="Which songs last over 1.5 seconds?")
    assert sql == "SELECT T1.Name FROM track AS T1 WHERE T1.TrackId IN (SELECT TrackId FROM track WHERE Milliseconds > 1500)"
    assert rows(database, sql) == [("Shook",), ("So What",)]
    assert rows(database, joined) == [("Shook",)]


def test_an_unread_from_table_the_question_does_not_name_gives_its_place(database, schema) -> None:
    sql, _ = drop_unnamed_joins(
        "SELECT T2.Country FROM invoice_line AS T1 JOIN invoice AS T2 ON T1.InvoiceId = T2.InvoiceId WHERE T2.Total > 2",
        dialect="sqlite", schema=schema, question="Which countries were billed more than 2?",
    )
    assert sql == "SELECT T2.Country FROM invoice AS T2 WHERE T2.Total > 2"
    assert rows(database, sql) == [("DE",), ("DE",)]


@pytest.mark.parametrize(
    ("sql", "question"),
    [
        # The question names the joined table: the join is its filter ("songs on a playlist").
        (
            "SELECT T1.Name FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId",
            "Which songs are on a playlist?",
        ),
        # A count over the join counts its rows; DISTINCT asks for the rows that have a match.
        (
            "SELECT T1.Country, COUNT(*) FROM invoice AS T1 JOIN invoice_line AS T2 ON T1.InvoiceId = T2.InvoiceId "
            "GROUP BY T1.Country",
            "How many were sold in each country?",
        ),
        (
            "SELECT DISTINCT T1.Name FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId",
            "Which songs were picked?",
        ),
        # In a branch of a set operation the join is the filter ("songs on no playlist").
        (
            "SELECT Name FROM track EXCEPT SELECT T1.Name FROM track AS T1 JOIN playlist_track AS T2 "
            "ON T1.TrackId = T2.TrackId",
            "Which songs were never picked?",
        ),
        # A subquery's column that its own tables lack is the joined table's, read from above.
        (
            "SELECT T1.Name FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId "
            "WHERE EXISTS (SELECT 1 FROM album WHERE PlaylistId = 1)",
            "Which songs are long?",
        ),
        # The one side of the key, and a joined table that is read.
        (
            "SELECT T2.Name FROM album AS T1 JOIN track AS T2 ON T1.AlbumId = T2.AlbumId",
            "List every song.",
        ),
        (
            "SELECT T1.Name, T2.PlaylistId FROM track AS T1 JOIN playlist_track AS T2 ON T1.TrackId = T2.TrackId",
            "List every song and where it was picked.",
        ),
    ],
)
def test_a_join_the_question_names_or_may_mean_stays(schema, sql: str, question: str) -> None:
    assert drop_unnamed_joins(sql, dialect="sqlite", schema=schema, question=question) is None


def test_without_a_question_nothing_is_dropped(schema) -> None:
    assert drop_unnamed_joins(LONGEST, dialect="sqlite", schema=schema, question=None) is None


def test_the_candidate_check_drops_an_unnamed_join_unless_switched_off(database, schema) -> None:
    target = ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5)
    asked = Asked(question="Which two songs last longest?")
    dropped = check_candidate(LONGEST, dialects=SQLITE, schema=schema, validate=True, target=target, asked=asked)
    assert dropped.ok and " JOIN " not in dropped.answer_sql
    assert sorted(tuple(r) for r in dropped.result.rows) == [("Shook",), ("So What",)]
    for switches in ({"drop_unnamed_joins": False}, {"fix_identifiers": False}):
        kept = check_candidate(
            LONGEST, dialects=SQLITE, schema=schema, validate=True, target=target, asked=asked,
            rewrites=Rewrites(**switches),
        )
        assert kept.ok and not kept.fixes and " JOIN " in kept.answer_sql
