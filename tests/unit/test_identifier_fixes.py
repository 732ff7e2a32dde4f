"""Deterministic identifier fixes: only unambiguous slips, and the candidate check keeps a fix only when the
whole statement then validates."""

from __future__ import annotations

import pytest

from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.fixes import fix_identifiers, fold
from text2sql.pipeline.rewrites import Rewrites
from text2sql.schema import DatabaseSchema

SCHEMA = DatabaseSchema.model_validate(
    {
        "tables": [
            {"name": "Pets", "columns": [{"name": "PetID"}, {"name": "PetType"}, {"name": "pet_age"}, {"name": "weight"}]},
            {"name": "Has_Pet", "columns": [{"name": "StuID"}, {"name": "PetID"}]},
            {"name": "Student", "columns": [{"name": "StuID"}, {"name": "Fname"}, {"name": "LName"}, {"name": "Song Name"}]},
        ]
    }
)
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")


@pytest.mark.parametrize(
    ("sql", "expected", "fix"),
    [
        (
            "SELECT T2.weight FROM Pets AS T1 JOIN Has_Pet AS T2 ON T1.PetID = T2.PetID",
            "SELECT T1.weight FROM Pets AS T1 JOIN Has_Pet AS T2 ON T1.PetID = T2.PetID",
            "T2.weight -> T1.weight",
        ),
        (
            "SELECT weight FROM Pets ORDER BY PetAge LIMIT 1",
            "SELECT weight FROM Pets ORDER BY pet_age LIMIT 1",
            "PetAge -> pet_age",
        ),
        (
            "SELECT T1.Fname FROM Student AS T1 JOIN Has_Pet AS T2 ON T1.StuID = T2.StuID "
            "JOIN Pets AS T3 ON T3.PetID = T2.PetID WHERE T2.PetAge > 1",
            "SELECT T1.Fname FROM Student AS T1 JOIN Has_Pet AS T2 ON T1.StuID = T2.StuID "
            "JOIN Pets AS T3 ON T3.PetID = T2.PetID WHERE T3.pet_age > 1",
            "T2.PetAge -> T3.pet_age",
        ),
        ("SELECT song_name FROM Student", 'SELECT "Song Name" FROM Student', 'song_name -> "Song Name"'),
        ("SELECT COUNT(*) FROM HasPet", "SELECT COUNT(*) FROM Has_Pet", "HasPet -> Has_Pet"),
    ],
)
def test_unambiguous_slips_are_fixed(sql: str, expected: str, fix: str) -> None:
    fixed = fix_identifiers(sql, dialect="sqlite", schema=SCHEMA)
    assert fixed is not None
    assert fixed[0] == expected
    assert [f.describe() for f in fixed[1]] == [fix]


@pytest.mark.parametrize(
    "sql",
    [
        # StuID is on two joined tables: which one was meant is not for us to guess.
        "SELECT T1.Fname FROM Student AS T1 JOIN Has_Pet AS T2 ON T1.StuID = T2.StuID WHERE T2.Fname2 = 1",
        # Fname is on Student, which the query does not join: that needs the model.
        "SELECT T2.Fname FROM Has_Pet AS T1 JOIN Pets AS T2 ON T1.PetID = T2.PetID",
        # Nothing wrong.
        "SELECT T1.weight FROM Pets AS T1",
        # A derived table: its columns are not the schema's.
        "SELECT x.weight2 FROM (SELECT weight FROM Pets) AS x",
    ],
)
def test_nothing_is_guessed(sql: str) -> None:
    assert fix_identifiers(sql, dialect="sqlite", schema=SCHEMA) is None


def test_fold() -> None:
    assert fold("Pet_Age") == fold('"pet age"') == fold("PetAge") == "petage"


def test_the_candidate_check_applies_a_fix_and_reports_it() -> None:
    reply = "```sql\nSELECT T2.weight FROM Pets AS T1 JOIN Has_Pet AS T2 ON T1.PetID = T2.PetID\n```"
    outcome = check_candidate(reply, dialects=SQLITE, schema=SCHEMA, validate=True)
    assert outcome.ok and outcome.validated
    assert outcome.answer_sql == "SELECT T1.weight FROM Pets AS T1 JOIN Has_Pet AS T2 ON T1.PetID = T2.PetID"
    assert outcome.fixes == ["T2.weight -> T1.weight"]


def test_the_switch_turns_fixes_off() -> None:
    reply = "SELECT T2.weight FROM Pets AS T1 JOIN Has_Pet AS T2 ON T1.PetID = T2.PetID"
    outcome = check_candidate(reply, dialects=SQLITE, schema=SCHEMA, validate=True, rewrites=Rewrites(fix_identifiers=False))
    assert not outcome.ok and outcome.code == "unknown_column" and outcome.fixes == []


def test_an_unsafe_statement_is_never_fixed_into_running() -> None:
    reply = "SELECT T2.weight, load_extension('x') FROM Pets AS T1 JOIN Has_Pet AS T2 ON T1.PetID = T2.PetID"
    outcome = check_candidate(reply, dialects=SQLITE, schema=SCHEMA, validate=True)
    assert not outcome.ok and outcome.code == "forbidden_function"
