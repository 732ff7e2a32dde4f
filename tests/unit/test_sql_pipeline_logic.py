"""The pipeline's control flow over scripted engines: repair, voting, dialects, schema fitting.

The behaviour on real models and databases is proven in tests/serve/test_sql_pipeline.py; here a
scripted engine makes each branch happen on purpose.
"""

from __future__ import annotations

import asyncio
import sqlite3

from deployments.builder import parse_app_config
from deployments.config import PipelineSettings
from deployments.databases import DatabaseConfig
from deployments.protocol.sql import SqlGenerateRequest
from deployments.serving.sql_generation import generate_sql
from tests.fakes import FakeEngine
from text2sql.pipeline.inputs import SchemaContext
from text2sql.schema.ddl import parse_ddl

DDL = "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, salary REAL);"
SCHEMA = parse_ddl(DDL)
CONFIG = parse_app_config({"models": [{"name": "m", "source": "embedded:qwen2.5-coder-0.5b"}]}).models[0]


def run(engine, *, resolved=None, pipeline=None, **request):
    return asyncio.run(
        generate_sql(
            engine,
            CONFIG,
            SqlGenerateRequest(question=request.pop("question", "q"), **request),
            resolved or SchemaContext(schema_=SCHEMA, dialect="sqlite"),
            pipeline=pipeline or PipelineSettings(),
        )
    )


def test_repair_reprompts_with_the_error_and_identifiers():
    engine = FakeEngine(["SELECT nam FROM employees", "SELECT name FROM employees"])
    response = run(engine)
    assert response.success and response.sql == "SELECT name FROM employees"
    assert [a.stage for a in response.attempts] == ["validate", "ok"]
    assert response.attempts[0].code == "unknown_column"
    repair_turn = engine.requests[1].messages[-1].content
    assert "nam" in repair_turn and "employees: id, name, salary" in repair_turn
    assert engine.requests[1].messages[-2].content == "SELECT nam FROM employees"
    # The retry samples: greedy decoding would only repeat itself.
    assert engine.requests[0].sampling.temperature == 0 and engine.requests[1].sampling.temperature > 0


def test_repairs_are_bounded():
    engine = FakeEngine("SELECT nam FROM employees")
    response = run(engine, max_repairs=1)
    assert not response.success and len(response.attempts) == 2 and len(engine.requests) == 2
    assert "nam" in response.error and "employees.name" in response.error.lower()
    assert response.validated is False and response.validation_error == response.error


def test_no_validation_returns_the_sql_as_written():
    response = run(FakeEngine("SELECT nam FROM employees"), validate=False)
    assert response.success and response.sql == "SELECT nam FROM employees"
    assert response.validated is False and "switched off" in response.validation_error


def test_unsafe_sql_is_never_repaired_into_success_silently():
    response = run(FakeEngine("SELECT 1; DROP TABLE employees"), max_repairs=0)
    assert not response.success and response.attempts[-1].code == "multiple_statements"


def test_answer_is_transpiled_to_the_requested_dialect():
    # Against a SQLite database the model writes SQLite; the answer comes back in T-SQL.
    resolved = SchemaContext(schema_=SCHEMA, dialect="tsql", database_dialect="sqlite")
    engine = FakeEngine("SELECT name FROM employees ORDER BY salary DESC LIMIT 2")
    response = run(engine, resolved=resolved, dialect="tsql")
    assert "SQLite" in engine.requests[0].messages[0].content
    assert response.success and response.dialect == "tsql"
    assert response.sql == "SELECT TOP 2 name FROM employees ORDER BY salary DESC"


def _database(tmp_path) -> DatabaseConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "e.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(DDL)
        conn.executemany("INSERT INTO employees VALUES (?, ?, ?)", [(1, "a", 10.0), (2, "b", 20.0), (3, "c", 30.0)])
    return DatabaseConfig(url=f"sqlite:///{path}", max_rows=2)


def test_execution_errors_are_repaired_and_rows_are_capped(tmp_path):
    database = _database(tmp_path)
    resolved = SchemaContext(schema_=SCHEMA, dialect="sqlite", database_dialect="sqlite", target=database.execution_target())
    # SQLite refuses a scalar subquery with two columns at run time; validation cannot know that.
    engine = FakeEngine(["SELECT name FROM employees WHERE salary > (SELECT salary, id FROM employees)", "SELECT name FROM employees ORDER BY salary"])
    response = asyncio.run(
        generate_sql(
            engine, CONFIG, SqlGenerateRequest(question="q", database="e", execute=True), resolved,
            pipeline=PipelineSettings(),
        )
    )
    assert [a.stage for a in response.attempts] == ["execute", "ok"]
    assert "database refused" in response.attempts[0].error
    assert "database refused" in engine.requests[1].messages[-1].content
    assert response.success and response.columns == ["name"]
    assert response.rows == [["a"], ["b"]] and response.row_count == 2 and response.truncated is True


def test_self_consistency_picks_the_result_most_candidates_agree_on(tmp_path):
    database = _database(tmp_path)
    resolved = SchemaContext(schema_=SCHEMA, dialect="sqlite", database_dialect="sqlite", target=database.execution_target())
    engine = FakeEngine([
        "SELECT MAX(salary) FROM employees",
        "SELECT salary FROM employees ORDER BY salary DESC LIMIT 1",
        "SELECT MIN(salary) FROM employees",
        "SELECT nam FROM employees",
        "SELECT MAX(salary) AS top FROM employees",
    ])
    response = asyncio.run(
        generate_sql(
            engine, CONFIG, SqlGenerateRequest(question="q", database="e", execute=True, n=5), resolved,
            pipeline=PipelineSettings(),
        )
    )
    assert response.success and response.rows == [[30.0]]
    assert [c.votes for c in response.candidates] == [3, 1]
    assert response.sql == "SELECT MAX(salary) FROM employees"
    # The first candidate is the greedy answer (greedy_candidate, on by default); the others are sampled.
    assert engine.requests[0].sampling.temperature == 0
    assert all(r.sampling.temperature == PipelineSettings().candidate_temperature for r in engine.requests[1:])


def test_greedy_candidate_decodes_the_first_of_n_greedily_and_wins_a_tie(tmp_path):
    engine = FakeEngine(["SELECT MAX(salary) FROM employees", "SELECT MIN(salary) FROM employees",
                         "SELECT nam FROM employees"])
    response = _run_on_database(tmp_path, engine, PipelineSettings(fix_identifiers=False), n=3, greedy_candidate=True)
    temperatures = [r.sampling.temperature for r in engine.requests]
    assert temperatures == [0.0, PipelineSettings().candidate_temperature, PipelineSettings().candidate_temperature]
    # One vote each for MAX and MIN: the greedy answer's group is first, so it wins.
    assert response.success and response.rows == [[30.0]]
    assert [c.votes for c in response.candidates] == [1, 1]
    # All candidates share one prompt, so the engine's cache serves every one.
    assert all(r.messages == engine.requests[0].messages for r in engine.requests)


def test_greedy_candidate_follows_the_pipeline_default_and_yields_to_a_given_temperature(tmp_path):
    anchored = PipelineSettings(greedy_candidate=True)
    engine = FakeEngine("SELECT MAX(salary) FROM employees")
    _run_on_database(tmp_path / "default", engine, anchored, n=3)
    assert [r.sampling.temperature for r in engine.requests] == [0.0, 0.7, 0.7]

    engine = FakeEngine("SELECT MAX(salary) FROM employees")
    _run_on_database(tmp_path / "given", engine, anchored, n=3, temperature=0.9)
    assert [r.sampling.temperature for r in engine.requests] == [0.9, 0.9, 0.9]

    engine = FakeEngine("SELECT MAX(salary) FROM employees")
    _run_on_database(tmp_path / "off", engine, anchored, n=3, greedy_candidate=False)
    assert [r.sampling.temperature for r in engine.requests] == [0.7, 0.7, 0.7]


def test_a_large_schema_is_cut_to_the_relevant_tables():
    tables = "\n".join(f"CREATE TABLE audit_{i} (id INTEGER, payload_{i} TEXT);" for i in range(400))
    schema = parse_ddl(tables + "\n" + DDL)
    engine = FakeEngine("SELECT AVG(salary) FROM employees")
    response = run(engine, resolved=SchemaContext(schema_=schema, dialect="sqlite"), question="average salary of employees")
    assert response.success and "employees" in response.tables_used and len(response.tables_used) < 50
    assert "audit_399" not in engine.requests[0].messages[1].content


def test_unparseable_schema_text_is_passed_through_unvalidated():
    engine = FakeEngine("SELECT name FROM people")
    resolved = SchemaContext(raw_text="people(name, age)", dialect="sqlite")
    response = run(engine, resolved=resolved)
    assert response.success and response.validated is False
    assert "could not be checked" in response.validation_error
    assert "people(name, age)" in engine.requests[0].messages[1].content


def test_constrained_decoding_passes_a_schema_grammar():
    engine = FakeEngine("SELECT name FROM employees")
    asyncio.run(
        generate_sql(
            engine, CONFIG, SqlGenerateRequest(question="q", constrained=True),
            SchemaContext(schema_=SCHEMA, dialect="sqlite"), pipeline=PipelineSettings(),
            grammar_for=lambda schema, dialect: f"root ::= \"{schema.tables[0].name}:{dialect}\"",
        )
    )
    assert engine.requests[0].sampling.grammar == 'root ::= "employees:sqlite"'


def test_history_reaches_the_prompt_and_is_capped_oldest_first():
    from text2sql.pipeline.context import cap_history
    from text2sql.prompts import HistoryTurn

    turns = [HistoryTurn(question=f"q{i}", sql=f"SELECT {i}") for i in range(5)]
    kept, dropped = cap_history(turns, max_turns=3, max_tokens=1000)
    assert [t.question for t in kept] == ["q2", "q3", "q4"] and dropped == 2
    kept, dropped = cap_history(turns, max_turns=10, max_tokens=7)  # 21 chars: two turns of 10
    assert [t.question for t in kept] == ["q3", "q4"] and dropped == 3
    assert cap_history(turns, max_turns=0, max_tokens=1000) == ([], 5)

    engine = FakeEngine("SELECT name FROM employees WHERE salary > 15")
    response = run(
        engine,
        pipeline=PipelineSettings(max_history_turns=1),
        question="only those earning more than 15",
        history=[{"question": "list the employees", "sql": "SELECT id FROM employees"},
                 {"question": "show their names", "sql": "SELECT name FROM employees"}],
    )
    assert response.success and response.history_used == 1 and response.history_dropped == 1
    assert "left out the 1 oldest of 2 history turns" in response.notes[0]
    sent = "\n".join(m.content for m in engine.requests[0].messages)
    assert "SELECT name FROM employees" in sent and "show their names" in sent
    assert "list the employees" not in sent


def test_followup_edit_follows_the_pipeline_default_and_the_request():
    history = [{"question": "list the employees", "sql": "SELECT name FROM employees"}]
    note = "Change the previous SQL query"
    for pipeline, request, expected in [
        (PipelineSettings(), {}, True),
        (PipelineSettings(followup_edit=False), {}, False),
        (PipelineSettings(), {"followup_edit": False}, False),
        (PipelineSettings(followup_edit=False), {"followup_edit": True}, True),
    ]:
        engine = FakeEngine("SELECT name FROM employees WHERE salary > 15")
        run(engine, pipeline=pipeline, question="only those earning more than 15", history=history, **request)
        assert (note in engine.requests[0].messages[-1].content) is expected, (pipeline, request)


def _run_on_database(tmp_path, engine, pipeline: PipelineSettings, **request):
    database = _database(tmp_path)
    resolved = SchemaContext(schema_=SCHEMA, dialect="sqlite", database_dialect="sqlite", target=database.execution_target())
    body = SqlGenerateRequest(question="q", database="e", execute=True, **request)
    return asyncio.run(generate_sql(engine, CONFIG, body, resolved, pipeline=pipeline))


def test_fallback_candidates_are_sampled_only_when_the_greedy_answer_fails(tmp_path):
    engine = FakeEngine(["SELECT nam FROM employees", "SELECT MAX(salary) FROM employees",
                         "SELECT MIN(salary) FROM employees", "SELECT MAX(salary) AS top FROM employees"])
    response = _run_on_database(tmp_path, engine, PipelineSettings(fallback_candidates=3, fix_identifiers=False))
    assert response.success and response.rows == [[30.0]]
    assert [c.votes for c in response.candidates] == [2, 1]
    assert len(engine.requests) == 4  # the greedy answer and three samples; no repair round
    assert engine.requests[0].sampling.temperature == 0
    assert all(r.sampling.temperature == PipelineSettings().candidate_temperature for r in engine.requests[1:])
    # Every sample reuses the greedy prompt, so the engine's prompt cache serves them all.
    assert all(r.messages == engine.requests[0].messages for r in engine.requests[1:])


def test_a_greedy_answer_with_rows_costs_no_samples(tmp_path):
    engine = FakeEngine("SELECT name FROM employees")
    response = _run_on_database(tmp_path, engine, PipelineSettings(fallback_candidates=3))
    assert response.success and len(engine.requests) == 1 and response.candidates is None


def test_rows_outvote_an_empty_greedy_answer_and_an_empty_answer_stands_alone(tmp_path):
    engine = FakeEngine(["SELECT name FROM employees WHERE salary > 100", "SELECT name FROM employees WHERE salary > 25",
                         "SELECT name FROM employees WHERE salary > 1000"])
    response = _run_on_database(tmp_path, engine, PipelineSettings(), fallback_candidates=2)
    assert response.success and response.rows == [["c"]]

    nothing = FakeEngine("SELECT name FROM employees WHERE salary > 100")
    (tmp_path / "again").mkdir()
    response = _run_on_database(tmp_path / "again", nothing, PipelineSettings(fallback_candidates=2))
    assert response.success and response.rows == [] and response.sql.endswith("> 100")
    assert len(nothing.requests) == 3


def test_fallback_gives_way_to_repair_when_every_sample_fails(tmp_path):
    engine = FakeEngine(["SELECT nam FROM employees", "SELECT nme FROM employees", "SELECT name FROM employees"])
    response = _run_on_database(tmp_path, engine, PipelineSettings(fallback_candidates=1, fix_identifiers=False))
    assert response.success and response.sql == "SELECT name FROM employees"
    assert [a.round for a in response.attempts] == [0, 0, 1]
    assert "That query failed" in engine.requests[2].messages[-1].content
