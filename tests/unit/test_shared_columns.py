"""An unqualified column that two joined tables hold is refused by the database as ambiguous; when the tables are
joined on it, it is qualified with the first of them. The statements run on a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from tests.sqlite_files import sorted_rows as rows
from tests.sqlite_files import sqlite_database
from text2sql.execution import ExecutionError
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.rewrites import Rewrites
from text2sql.pipeline.shared_columns import qualify_shared_columns
from text2sql.schema.introspect import introspect

DDL = """
CREATE TABLE museum (Museum_ID INTEGER PRIMARY KEY, Name TEXT, Num_of_Staff INTEGER);
CREATE TABLE visitor (ID INTEGER PRIMARY KEY, Name TEXT, Age INTEGER);
CREATE TABLE visit (Museum_ID INTEGER REFERENCES museum(Museum_ID), visitor_ID INTEGER REFERENCES visitor(ID),
  Num_of_Ticket INTEGER);
INSERT INTO museum VALUES (1, 'Plaza', 62), (2, 'Capital', 25), (3, 'Jefferson', 18);
INSERT INTO visitor VALUES (1, 'Gonzalo', 35), (2, 'Arjen', 22);
INSERT INTO visit VALUES (1, 1, 20), (2, 1, 4), (2, 2, 10);
"""
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("shared") / "museum.sqlite", DDL)


@pytest.fixture(scope="module")
def schema(database: str):
    return introspect(database)


def test_a_column_the_tables_are_joined_on_is_qualified_with_the_first(database, schema) -> None:
    ambiguous = (
        "SELECT Museum_ID, SUM(T1.Num_of_Ticket) FROM visit AS T1 JOIN museum AS T2 ON T1.Museum_ID = T2.Museum_ID "
        "GROUP BY Museum_ID ORDER BY Museum_ID"
    )
    with pytest.raises(ExecutionError, match="ambiguous"):
        rows(database, ambiguous)
    sql, notes = qualify_shared_columns(ambiguous, dialect="sqlite", schema=schema)
    assert sql == (
        "SELECT T1.Museum_ID, SUM(T1.Num_of_Ticket) FROM visit AS T1 JOIN museum AS T2 ON T1.Museum_ID = T2.Museum_ID "
        "GROUP BY T1.Museum_ID ORDER BY T1.Museum_ID"
    )
    assert notes == ["qualified museum_id as T1.Museum_ID (the tables holding it are joined on it)"]
    assert rows(database, sql) == [(1, 20), (2, 14)]


def test_a_chain_of_equalities_through_where_links_three_tables(database, schema) -> None:
    sql, _ = qualify_shared_columns(
        "SELECT Museum_ID FROM museum AS A, visit AS B, museum AS C "
        "WHERE A.Museum_ID = B.Museum_ID AND B.Museum_ID = C.Museum_ID AND B.Num_of_Ticket > 5",
        dialect="sqlite", schema=schema,
    )
    assert sql.startswith("SELECT A.Museum_ID FROM museum AS A")
    assert rows(database, sql) == [(1,), (2,)]


@pytest.mark.parametrize(
    "sql",
    [
        # Joined on another column: the two names hold different things, and the question decides.
        "SELECT Name FROM visit AS T1 JOIN visitor AS T2 ON T1.visitor_ID = T2.ID JOIN museum AS T3 "
        "ON T1.Museum_ID = T3.Museum_ID",
        # The equality is under OR: it does not hold on every row.
        "SELECT Museum_ID FROM visit AS T1, museum AS T2 WHERE T1.Museum_ID = T2.Museum_ID OR T2.Num_of_Staff > 50",
        # USING merges the shared column already, and the database accepts it as it is.
        "SELECT Museum_ID FROM visit JOIN museum USING (Museum_ID)",
        # A RIGHT join keeps museums nobody visited, whose visit.Museum_ID is NULL.
        "SELECT Museum_ID FROM visit AS T1 RIGHT JOIN museum AS T2 ON T1.Museum_ID = T2.Museum_ID",
        # Through a LEFT join only the FROM table keeps its values, and here it lacks the column.
        "SELECT Museum_ID FROM visitor AS V LEFT JOIN visit AS T1 ON V.ID = T1.visitor_ID "
        "LEFT JOIN museum AS T2 ON T1.Museum_ID = T2.Museum_ID",
        # A select alias of that name is what ORDER BY means.
        "SELECT T2.Name AS Name FROM visitor AS T1 JOIN visitor AS T2 ON T1.ID = T2.ID ORDER BY Name",
        # Qualified already.
        "SELECT T2.Museum_ID FROM visit AS T1 JOIN museum AS T2 ON T1.Museum_ID = T2.Museum_ID",
    ],
)
def test_what_the_join_does_not_settle_stays(schema, sql: str) -> None:
    assert qualify_shared_columns(sql, dialect="sqlite", schema=schema) is None


def test_a_left_join_from_the_holding_table_is_qualified_with_it(database, schema) -> None:
    sql, _ = qualify_shared_columns(
        "SELECT Museum_ID, COUNT(T2.visitor_ID) FROM museum AS T1 LEFT JOIN visit AS T2 "
        "ON T1.Museum_ID = T2.Museum_ID GROUP BY Museum_ID",
        dialect="sqlite", schema=schema,
    )
    assert rows(database, sql) == [(1, 1), (2, 2), (3, 0)]  # museum 3, never visited, keeps its id


def test_the_candidate_check_qualifies_unless_fixes_are_off(database, schema) -> None:
    target = ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5)
    reply = "SELECT Museum_ID FROM visit AS T1 JOIN museum AS T2 ON T1.Museum_ID = T2.Museum_ID WHERE T1.Num_of_Ticket > 5"
    fixed = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target)
    assert fixed.ok and sorted(tuple(r) for r in fixed.result.rows) == [(1,), (2,)]
    assert fixed.fixes == ["qualified museum_id as T1.Museum_ID (the tables holding it are joined on it)"]
    refused = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target, rewrites=Rewrites(fix_identifiers=False))
    assert refused.stage == "execute" and "ambiguous" in refused.error


def test_sqlite_refuses_every_statement_it_changes(database, schema) -> None:
    """The rewrite claims it touches only statements the database refuses: check that on its own test cases."""
    for ambiguous in (
        "SELECT Museum_ID FROM visit AS T1 JOIN museum AS T2 ON T1.Museum_ID = T2.Museum_ID",
        "SELECT Name FROM museum AS A JOIN museum AS B ON A.Name = B.Name",
    ):
        assert qualify_shared_columns(ambiguous, dialect="sqlite", schema=schema) is not None
        with pytest.raises(sqlite3.OperationalError, match="ambiguous"):
            sqlite3.connect(database.removeprefix("sqlite:///")).execute(ambiguous)
