"""A family name the question did not ask for: when a question asks for a given name ("first name", 名) and no
family name, the answer's family-name column beside the same table's given name is dropped. Kept when the question
names the family name or the full name (last name, surname, 姓, 姓名, 全名), for another table's family name, in a
set operation and inside subqueries. The queries run on a real SQLite file."""

from __future__ import annotations

import pytest

from tests.sqlite_files import sqlite_database
from text2sql.execution import execute_read_only
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.family_names import drop_unasked_family_names
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.rewrites import Asked, Rewrites
from text2sql.schema.introspect import introspect

DDL = """
CREATE TABLE Owners (owner_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT);
CREATE TABLE Dogs (dog_id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES Owners(owner_id), name TEXT);
CREATE TABLE Student (StuID INTEGER PRIMARY KEY, Fname TEXT, LName TEXT, Sex TEXT);
CREATE TABLE Vet (vet_id INTEGER PRIMARY KEY, vet_surname TEXT, vet_forename TEXT);
INSERT INTO Owners VALUES (1, 'Ada', 'Byron'), (2, 'Alan', 'Turing');
INSERT INTO Dogs VALUES (1, 1, 'Rex'), (2, 2, 'Fido'), (3, 2, 'Bo');
INSERT INTO Student VALUES (1, 'Linda', 'Smith', 'F'), (2, 'Tracy', 'Kim', 'F');
INSERT INTO Vet VALUES (1, 'Herriot', 'James');
"""
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")
PAIRS = "SELECT T1.first_name, T1.last_name, T2.name FROM Owners AS T1 JOIN Dogs AS T2 ON T1.owner_id = T2.owner_id"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("names") / "kennel.sqlite", DDL)


@pytest.fixture(scope="module")
def schema(database):
    return introspect(database)


def rows(database: str, sql: str) -> list[tuple]:
    result = execute_read_only(database, sql, max_rows=100, timeout_s=5).rows
    return sorted((tuple(row) for row in result), key=repr)


@pytest.mark.parametrize(
    "question",
    [
        "List pairs of the owner's first name and the dogs's name.",
        "What are the first names of owners and the names of their dogs?",
        "列出主人的名字和狗的名字对。",
        "每个主人的名和他们的狗的名字是什么？",
    ],
)
def test_a_family_name_the_question_did_not_ask_for_is_dropped(database, schema, question) -> None:
    sql, notes = drop_unasked_family_names(PAIRS, dialect="sqlite", schema=schema, question=question)
    assert rows(database, sql) == [("Ada", "Rex"), ("Alan", "Bo"), ("Alan", "Fido")]
    assert notes == ["dropped T1.last_name: the question asks for the first name, not the family name"]


@pytest.mark.parametrize(
    "question",
    [
        "List the first and last names of owners with their dogs' names.",
        "What are the full names of the owners and their dogs?",
        "Give the first name and surname of each owner.",
        "列出主人的姓名和狗的名字。",
        "列出主人的名字和姓氏以及狗的名字。",
        "列出主人的全名和狗的名字。",
        "Which owners have dogs?",  # no given name asked for either: the whole name may be what is meant
        "养狗最多的前五名主人是谁？",  # 名 of a rank (the top five), not a given name
        "列出主人的名单。",
        None,
    ],
)
def test_a_question_naming_the_family_or_whole_name_keeps_it(schema, question) -> None:
    assert drop_unasked_family_names(PAIRS, dialect="sqlite", schema=schema, question=question) is None


def test_spellings_aliases_and_unqualified_columns(database, schema) -> None:
    question = "Find the first name and gender of the students."
    sql, _ = drop_unasked_family_names(
        "SELECT Fname, LName, Sex FROM Student", dialect="sqlite", schema=schema, question=question
    )
    assert rows(database, sql) == [("Linda", "F"), ("Tracy", "F")]
    sql, _ = drop_unasked_family_names(
        "SELECT vet_forename AS given, vet_surname AS family FROM Vet", dialect="sqlite", schema=schema,
        question="What is the vet's forename?",
    )
    assert rows(database, sql) == [("James",)]


def test_left_alone(schema) -> None:
    question = "What are the owners' first names?"
    kept = [
        # Another table's family name, or one with no given name beside it.
        "SELECT T2.name, T1.last_name FROM Owners AS T1 JOIN Dogs AS T2 ON T1.owner_id = T2.owner_id",
        "SELECT S.Fname, O.last_name FROM Student AS S JOIN Owners AS O ON S.StuID = O.owner_id",
        # A set operation's branches keep their columns alike; a subquery's columns are the outer query's business.
        "SELECT first_name, last_name FROM Owners UNION SELECT Fname, LName FROM Student",
        "SELECT first_name FROM Owners WHERE owner_id IN (SELECT owner_id FROM (SELECT owner_id, first_name, "
        "last_name FROM Owners))",
        # Distinct rows ordered by the family name must show it on PostgreSQL.
        "SELECT DISTINCT first_name, last_name FROM Owners ORDER BY last_name",
        # Computed from both: the whole name, as the query chose to show it.
        "SELECT first_name || ' ' || last_name FROM Owners",
    ]
    for sql in kept:
        assert drop_unasked_family_names(sql, dialect="sqlite", schema=schema, question=question) is None, sql


def test_the_candidate_check_drops_it_unless_switched_off(database, schema) -> None:
    target = ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5)
    asked = Asked(question="列出主人的名字和狗的名字对。")
    dropped = check_candidate(PAIRS, dialects=SQLITE, schema=schema, validate=True, target=target, asked=asked)
    assert dropped.ok and len(dropped.result.columns) == 2
    assert any("dropped T1.last_name" in fix for fix in dropped.fixes)
    for switches in ({"drop_unasked_family_names": False}, {"fix_identifiers": False}):
        kept = check_candidate(
            PAIRS, dialects=SQLITE, schema=schema, validate=True, target=target, asked=asked,
            rewrites=Rewrites(**switches),
        )
        assert kept.ok and len(kept.result.columns) == 3
