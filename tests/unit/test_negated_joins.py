"""A negated question's `<>` across a one-to-many join ("students who do not have a cat" written as students with
some pet that is not a cat) becomes NOT EXISTS. The statements run on a real SQLite file."""

from __future__ import annotations

import pytest

from tests.sqlite_files import sorted_rows as rows
from tests.sqlite_files import sqlite_database
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.negated_joins import is_negated, negate_across_joins
from text2sql.pipeline.rewrites import Asked, Rewrites
from text2sql.schema.introspect import introspect

DDL = """
CREATE TABLE Student (StuID INTEGER PRIMARY KEY, Fname TEXT, Major INTEGER);
CREATE TABLE Pets (PetID INTEGER PRIMARY KEY, PetType TEXT, weight REAL);
CREATE TABLE Has_Pet (StuID INTEGER REFERENCES Student(StuID), PetID INTEGER REFERENCES Pets(PetID));
CREATE TABLE party (party_id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE member (member_id INTEGER PRIMARY KEY, name TEXT, party_id INTEGER REFERENCES party(party_id));
INSERT INTO Student VALUES (1, 'Linda', 600), (2, 'Tracy', 600), (3, 'Shiela', 520), (4, 'Dinesh', 540);
INSERT INTO Pets VALUES (10, 'cat', 12), (11, 'dog', 13), (12, 'dog', 9);
-- Linda has a cat and a dog, Tracy a dog, Shiela none, Dinesh a dog
INSERT INTO Has_Pet VALUES (1, 10), (1, 11), (2, 12), (4, 11);
INSERT INTO party VALUES (1, 'Progress'), (2, 'Labour');
INSERT INTO member VALUES (1, 'Ann', 1), (2, 'Bo', 2);
"""
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")
PETS = "FROM Student AS T1 JOIN Has_Pet AS T2 ON T1.StuID = T2.StuID JOIN Pets AS T3 ON T2.PetID = T3.PetID"
NO_CAT = "Find the names of students who do not have a cat."


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("negated") / "pets.sqlite", DDL)


@pytest.fixture(scope="module")
def schema(database: str):
    return introspect(database)


def test_some_other_pet_becomes_no_cat(database, schema) -> None:
    some_other = f"SELECT T1.Fname {PETS} WHERE T3.PetType <> 'cat'"
    assert rows(database, some_other) == [("Dinesh",), ("Linda",), ("Tracy",)]  # Linda has a cat; Shiela is missing
    sql, notes = negate_across_joins(some_other, dialect="sqlite", schema=schema, question=NO_CAT)
    assert sql == (
        "SELECT T1.Fname FROM Student AS T1 WHERE NOT EXISTS(SELECT 1 FROM Has_Pet AS T2 JOIN Pets AS T3 "
        "ON T2.PetID = T3.PetID WHERE T2.StuID = T1.StuID AND T3.PetType = 'cat')"
    )
    assert notes == ["T3.PetType <> 'cat' across a one-to-many join became NOT EXISTS (no such row); the join dropped"]
    assert rows(database, sql) == [("Dinesh",), ("Shiela",), ("Tracy",)]


def test_an_aggregate_counts_each_student_once(database, schema) -> None:
    sql, _ = negate_across_joins(
        f"SELECT COUNT(*) {PETS} WHERE T3.PetType != 'cat' AND T1.Major = 600",
        dialect="sqlite", schema=schema, question="How many students in major 600 don't own a cat?",
    )
    assert sql.startswith("SELECT COUNT(*) FROM Student AS T1 WHERE T1.Major = 600 AND NOT EXISTS(")
    assert rows(database, sql) == [(1,)]  # Tracy


def test_a_branch_read_elsewhere_keeps_its_join(database, schema) -> None:
    sql, notes = negate_across_joins(
        f"SELECT T1.Fname {PETS} WHERE T3.PetType = 'dog' AND T3.PetType <> 'cat'",
        dialect="sqlite", schema=schema, question="Who has a dog but no cat?",
    )
    assert sql.startswith(f"SELECT T1.Fname {PETS} WHERE T3.PetType = 'dog' AND NOT EXISTS(")
    assert notes[0].endswith("the join kept")
    assert rows(database, sql) == [("Dinesh",), ("Tracy",)]


def test_chinese_negation_counts_and_different_does_not() -> None:
    assert is_negated("没有养猫的学生叫什么名字？") and is_negated("哪些学生不养猫？")
    assert not is_negated("有多少种不同的宠物类型？") and not is_negated("List students with another pet")
    assert is_negated("Which students haven't got a cat?") and is_negated("students without cats")


@pytest.mark.parametrize(
    ("sql", "question"),
    [
        # Not a negated question: "some pet other than a cat" is what it asks.
        (f"SELECT T1.Fname {PETS} WHERE T3.PetType <> 'cat'", "Which students have a pet other than a cat?"),
        # Each member has one party (a many-to-one step): the <> is right as it is.
        ("SELECT T1.name FROM member AS T1 JOIN party AS T2 ON T1.party_id = T2.party_id WHERE T2.name <> 'Progress'",
         "Which members are not in the Progress party?"),
        # On the selected table itself.
        (f"SELECT T1.Fname, T3.PetType {PETS} WHERE T1.Fname <> 'Linda'", "Pets of students not named Linda"),
        # Two inequalities on the branch: which pairs with which is unclear.
        (f"SELECT T1.Fname {PETS} WHERE T3.PetType <> 'cat' AND T3.weight <> 9", "Students with no light cat"),
        # An outer join keeps the students with no pet already.
        ("SELECT T1.Fname FROM Student AS T1 LEFT JOIN Has_Pet AS T2 ON T1.StuID = T2.StuID WHERE T2.PetID <> 10",
         "Students who do not have pet 10"),
        # A join on no declared key: its direction is unknown.
        ("SELECT T1.Fname FROM Student AS T1 JOIN Pets AS T3 ON T1.StuID = T3.PetID WHERE T3.PetType <> 'cat'",
         "Students who do not have a cat"),
        # A set operation already says what it excludes.
        (f"SELECT T1.Fname FROM Student AS T1 EXCEPT SELECT T1.Fname {PETS} WHERE T3.PetType = 'cat'", NO_CAT),
    ],
)
def test_what_the_keys_and_the_question_do_not_settle_stays(schema, sql: str, question: str) -> None:
    assert negate_across_joins(sql, dialect="sqlite", schema=schema, question=question) is None


def test_the_candidate_check_negates_unless_switched_off(database, schema) -> None:
    target = ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5)
    reply = f"SELECT T1.Fname {PETS} WHERE T3.PetType <> 'cat'"
    negated = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target, asked=Asked(question=NO_CAT))
    assert negated.ok and sorted(tuple(r) for r in negated.result.rows) == [("Dinesh",), ("Shiela",), ("Tracy",)]
    for switches in ({"negate_across_joins": False}, {"fix_identifiers": False}):
        kept = check_candidate(
            reply, dialects=SQLITE, schema=schema, validate=True, target=target, asked=Asked(question=NO_CAT),
            rewrites=Rewrites(**switches),
        )
        assert kept.ok and not kept.fixes and sorted(tuple(r) for r in kept.result.rows) == [("Dinesh",), ("Linda",), ("Tracy",)]
    unasked = check_candidate(reply, dialects=SQLITE, schema=schema, validate=True, target=target)
    assert not unasked.fixes  # without the question there is no negation to read
