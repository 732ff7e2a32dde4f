"""Join completion: a column only a table one foreign key away has is reached by joining that table, with no
model call, and only when one table, one source and one key fit. The fixed queries run on a real SQLite file."""

from __future__ import annotations

import pytest

from tests.sqlite_files import sqlite_database
from text2sql.execution import QueryResult, execute_read_only
from text2sql.pipeline.candidate import CandidateOutcome, Dialects, check_candidate
from text2sql.pipeline.fixes import fix_identifiers
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.vote import vote
from text2sql.schema.introspect import introspect

DDL = """
CREATE TABLE battle (id INTEGER PRIMARY KEY, name TEXT, result TEXT);
CREATE TABLE ship (id INTEGER PRIMARY KEY, name TEXT, ship_type TEXT, tonnage INTEGER,
                   lost_in_battle INTEGER REFERENCES battle(id));
CREATE TABLE death (id INTEGER PRIMARY KEY, caused_by_ship_id INTEGER REFERENCES ship(id), killed INTEGER,
                    injured INTEGER, note TEXT);
CREATE TABLE port (id INTEGER PRIMARY KEY, ship_id INTEGER REFERENCES ship(id), harbour TEXT, note TEXT,
                   caused_by_ship TEXT);
INSERT INTO battle VALUES (1, 'Ankh', 'won'), (2, 'Bex', 'lost'), (3, 'Cos', 'won');
INSERT INTO ship VALUES (1, 'Lettice', 'Brig', 225, 1), (2, 'Atalanta', 'Brig', 300, 2), (3, 'Grit', 'Frigate', 225, 2);
INSERT INTO death VALUES (1, 1, 10, 2, 'a'), (2, 3, 4, 9, 'b');
INSERT INTO port VALUES (1, 1, 'Dover', 'c', 'x');
"""
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("joins") / "battles.sqlite", DDL)


@pytest.fixture(scope="module")
def schema(database: str):
    return introspect(database)


def rows(database: str, sql: str) -> list[tuple]:
    return [tuple(row) for row in execute_read_only(database, sql, max_rows=100, timeout_s=5).rows]


def test_a_missing_join_is_added_on_the_foreign_key(database, schema) -> None:
    fixed = fix_identifiers("SELECT id, name FROM battle WHERE ship_type = 'Brig'", dialect="sqlite", schema=schema)
    assert fixed is not None
    sql, fixes = fixed
    assert sql == (
        "SELECT battle.id, battle.name FROM battle JOIN ship ON battle.id = ship.lost_in_battle "
        "WHERE ship.ship_type = 'Brig'"
    )
    assert [f.describe() for f in fixes] == [
        "ship_type -> ship.ship_type (JOIN ship ON battle.id = ship.lost_in_battle)"
    ]
    assert sorted(rows(database, sql)) == [(1, "Ankh"), (2, "Bex")]


def test_the_key_is_followed_from_either_side_and_onto_a_wrong_alias(database, schema) -> None:
    sql, _ = fix_identifiers(
        "SELECT T1.name FROM ship AS T1 WHERE T1.killed > 5", dialect="sqlite", schema=schema
    )
    assert sql == "SELECT T1.name FROM ship AS T1 JOIN death ON T1.id = death.caused_by_ship_id WHERE death.killed > 5"
    assert rows(database, sql) == [("Lettice",)]


def test_a_bare_star_keeps_to_the_table_the_query_named(database, schema) -> None:
    sql, _ = fix_identifiers("SELECT * FROM ship WHERE result = 'won'", dialect="sqlite", schema=schema)
    assert sql.startswith("SELECT ship.* FROM ship JOIN battle ON ship.lost_in_battle = battle.id")
    assert rows(database, sql) == [(1, "Lettice", "Brig", 225, 1)]


def test_the_candidate_check_runs_the_joined_query_and_reports_the_join(database, schema) -> None:
    target = ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5)
    outcome = check_candidate(
        "```sql\nSELECT name FROM battle WHERE tonnage = 225\n```",
        dialects=SQLITE, schema=schema, validate=True, target=target,
    )
    assert outcome.ok, outcome.error
    assert outcome.fixes == ["tonnage -> ship.tonnage (JOIN ship ON battle.id = ship.lost_in_battle)"]
    assert outcome.joined
    assert sorted(tuple(row) for row in outcome.result.rows) == [("Ankh",), ("Bex",)]


@pytest.mark.parametrize(
    "sql",
    [
        # `note` is on death and on port, both a key away from ship: which was meant is not for us to guess.
        "SELECT name FROM ship WHERE note = 'a'",
        # `harbour` is only on port, which no key reaches from battle.
        "SELECT name FROM battle WHERE harbour = 'Dover'",
        # Two keys away (battle -> ship -> death): not one join.
        "SELECT name FROM battle WHERE injured > 5",
        # One column reachable, one not: the query goes back to the model whole, unchanged.
        "SELECT name FROM battle WHERE ship_type = 'Brig' AND harbour = 'Dover'",
        # A select alias, not a column.
        "SELECT name AS ship_type2 FROM battle ORDER BY ship_type2",
        # The joined table's name is taken as an alias already.
        "SELECT ship.name FROM battle AS ship WHERE ship.tonnage = 225",
    ],
)
def test_nothing_is_guessed(schema, sql: str) -> None:
    fixed = fix_identifiers(sql, dialect="sqlite", schema=schema)
    assert fixed is None or "JOIN" not in fixed[0], fixed


def test_a_correlated_reference_is_not_taken_for_a_slip(schema) -> None:
    # `result` belongs to the outer battle: joining battle into the subquery again would change its meaning.
    sql = "SELECT name FROM battle WHERE EXISTS (SELECT 1 FROM ship WHERE ship.lost_in_battle = battle.id AND result = 'won')"
    assert fix_identifiers(sql, dialect="sqlite", schema=schema) is None


def test_a_join_in_a_subquery(database, schema) -> None:
    sql, _ = fix_identifiers(
        "SELECT name FROM battle WHERE id IN (SELECT lost_in_battle FROM ship WHERE killed > 5)",
        dialect="sqlite", schema=schema,
    )
    assert "JOIN death ON ship.id = death.caused_by_ship_id" in sql
    assert rows(database, sql) == [("Ankh",)]


def test_a_long_name_a_letter_off_is_renamed_to_the_one_nearest(database, schema) -> None:
    sql, fixes = fix_identifiers(
        "SELECT T1.name FROM ship AS T1 JOIN death AS T2 ON T1.id = T2.cause_by_ship_id WHERE T2.killed > 5",
        dialect="sqlite", schema=schema,
    )
    assert "T2.caused_by_ship_id" in sql and [f.describe() for f in fixes] == [
        "T2.cause_by_ship_id -> T2.caused_by_ship_id"
    ]
    assert rows(database, sql) == [("Lettice",)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT names FROM ship",  # short: `names` is not taken for `name`
        "SELECT lost_battle_id FROM ship",  # long, but not near enough to lost_in_battle
        # `caused_by_ship_id` is a real column (of death): not a slip for port's `caused_by_ship`.
        "SELECT harbour FROM port WHERE caused_by_ship_id = 1",
    ],
)
def test_a_name_is_not_guessed_from_a_near_miss_when_short_or_far(schema, sql: str) -> None:
    assert fix_identifiers(sql, dialect="sqlite", schema=schema) is None


def test_a_fix_used_in_several_places_is_reported_once(schema) -> None:
    _, fixes = fix_identifiers(
        "SELECT name FROM battle WHERE ship_type = 'Brig' OR ship_type = 'Frigate'", dialect="sqlite", schema=schema
    )
    assert len(fixes) == 1


def outcome(rows: list[list], *, joined: bool) -> CandidateOutcome:
    done = CandidateOutcome(round=0, extracted="SELECT 1", answer_sql=f"SELECT {rows!r}", joined=joined)
    done.result = QueryResult(columns=["n"], rows=rows, row_count=len(rows), truncated=False, elapsed_ms=1)
    return done


def test_a_candidate_that_needed_a_join_is_half_a_vote() -> None:
    # Sampled answers that start from the wrong table all get the same join and agree on its inflated count.
    chosen, _ = vote([outcome([[5]], joined=True), outcome([[2]], joined=False)], n=2)
    assert chosen.result.rows == [[2]]
    chosen, candidates = vote([outcome([[5]], joined=True)] * 3 + [outcome([[2]], joined=False)], n=4)
    assert chosen.result.rows == [[5]] and [c.votes for c in candidates] == [3, 1]
