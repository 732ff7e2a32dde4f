"""The SPACE-T path of /v1/sql/generate without the model: settings, the table export from a real SQLite
database, SPACE-T's table files, history mapped onto `history_sql`, and the answer checked and run like any
model's. The engine here is a stand-in that records what it was given; the real pipeline runs in
tests/engines/test_modelscope_tableqa.py."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from deployments.builder import ConfigError, parse_app_config
from deployments.databases import DatabaseConfig
from deployments.engines.modelscope_tables import TABLE_FILE, table_record, write_table_files
from deployments.engines.registry import engine_builder
from deployments.engines.settings import ModelScopeTableQaSettings
from deployments.errors import TableQaUnsupported
from deployments.protocol.sql import SqlGenerateRequest
from deployments.serving import table_qa
from deployments.serving.table_exports import TableExports, select_all
from text2sql.pipeline.engine import EngineCapabilities
from text2sql.pipeline.inputs import SchemaContext
from text2sql.schema.introspect import introspect
from text2sql.table_qa import StructuredQuery, TableExportPolicy, TableQaAnswer, TableQaEngine

MODEL = {"name": "spacet", "source": "/models/spacet", "backend": "modelscope_tableqa"}
DDL = """
CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);
CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, singer_id INTEGER, city TEXT, year INTEGER);
"""
SINGERS = [(1, "王菲", "中国", 55), (2, "Adele", "英国", 36), (3, "周杰伦", "中国", 45)]
CONCERTS = [(1, 1, "北京", 2019), (2, 3, "上海", 2023)]


@pytest.fixture
def database(tmp_path: Path) -> DatabaseConfig:
    path = tmp_path / "music.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(DDL)
        conn.executemany("INSERT INTO singer VALUES (?, ?, ?, ?)", SINGERS)
        conn.executemany("INSERT INTO concert VALUES (?, ?, ?, ?)", CONCERTS)
    return DatabaseConfig(url=f"sqlite:///{path}")


def context_for(database: DatabaseConfig, *, execute: bool = False) -> SchemaContext:
    return SchemaContext(
        schema_=introspect(database.resolve_url()).model_copy(update={"name": "music"}),
        dialect="sqlite",
        database="music",
        database_dialect="sqlite",
        target=database.execution_target() if execute else None,
        source=database.execution_target(),
    )


class RecordingEngine(TableQaEngine):
    """Answers with a fixed structured query and records each call's arguments."""

    def __init__(self, answer: StructuredQuery, *, policy: TableExportPolicy | None = None) -> None:
        self.fixed = answer
        self.calls: list[tuple] = []
        self.prepared: list = []
        self.policy = policy or TableExportPolicy(max_rows_per_table=100, refresh_s=60)

    capabilities = EngineCapabilities(context_length=512, table_qa=True)

    @property
    def export_policy(self) -> TableExportPolicy:
        return self.policy

    async def answer(self, question, tables, previous) -> TableQaAnswer:
        self.calls.append((question, tables, previous))
        return TableQaAnswer(
            query=self.fixed, model_sql="SELECT ... (SPACE-T's own text)",
            history_used=previous is not None,
        )

    async def prepare(self, tables) -> None:
        self.prepared.append(tables)

    async def start(self) -> None: ...
    async def generate(self, request): raise NotImplementedError
    def stream(self, request): raise NotImplementedError
    async def check_health(self) -> None: ...


def ask(engine, database_context: SchemaContext, **request) -> table_qa.SqlGenerateResponse:
    config = parse_app_config({"models": [MODEL]}).models[0]
    body = SqlGenerateRequest(**{"question": "中国歌手有哪些", "database": "music", **request})
    return asyncio.run(table_qa.generate_sql(engine, config, body, database_context, exports=TableExports()))


# ---- settings ----------------------------------------------------------------------------------


def test_backend_selects_its_settings_and_its_engine() -> None:
    config = parse_app_config({"models": [{**MODEL, "engine": {"max_rows_per_table": 50}}]}).models[0]
    assert isinstance(config.engine, ModelScopeTableQaSettings)
    assert config.engine.max_rows_per_table == 50 and config.engine.table_refresh_s == 300
    engine = engine_builder("modelscope_tableqa")(config, Path("/models/spacet"))
    assert engine.capabilities.table_qa and not engine.capabilities.grammar and not engine.capabilities.adapters
    assert engine.export_policy == TableExportPolicy(max_rows_per_table=50, refresh_s=300)


@pytest.mark.parametrize(
    ("engine", "needle"),
    [({"max_rows_per_table": 0}, "max_rows_per_table"), ({"table_refresh_s": 0}, "table_refresh_s"), ({"n_ctx": 512}, "n_ctx")],
)
def test_invalid_settings_are_refused(engine: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_app_config({"models": [{**MODEL, "engine": engine}]})


# ---- tables and their files ----------------------------------------------------------------------


def test_rows_are_read_once_until_the_refresh_time(database: DatabaseConfig) -> None:
    exports = TableExports()
    context = context_for(database)
    first = exports.export(context, TableExportPolicy(max_rows_per_table=2, refresh_s=3600))
    assert first.tables.table("singer").rows == [[1, "王菲", "中国", 55], [2, "Adele", "英国", 36]]
    assert first.notes == ["table singer has more rows than were read for value matching (2)"]
    with sqlite3.connect(database.resolve_url().removeprefix("sqlite:///")) as conn:
        conn.execute("INSERT INTO concert VALUES (3, 2, '伦敦', 2024)")
    assert exports.export(context, TableExportPolicy(max_rows_per_table=2, refresh_s=3600)) is first
    refreshed = exports.export(context, TableExportPolicy(max_rows_per_table=5, refresh_s=1e-9))
    assert [row[2] for row in refreshed.tables.table("concert").rows] == ["北京", "上海", "伦敦"]
    assert refreshed.tables.key != first.tables.key


def test_a_table_whose_rows_cannot_be_read_is_offered_by_its_columns(database: DatabaseConfig) -> None:
    context = context_for(database)
    with sqlite3.connect(database.resolve_url().removeprefix("sqlite:///")) as conn:
        conn.execute("DROP TABLE concert")  # the cached schema still lists it
    export = TableExports().export(context, TableExportPolicy(max_rows_per_table=10, refresh_s=60))
    assert export.tables.table("concert").rows == [] and len(export.tables.table("singer").rows) == 3
    assert export.notes and "concert could not be read" in export.notes[0]


def test_an_inline_schema_has_no_rows_and_the_select_is_quoted() -> None:
    from text2sql.schema.ddl import parse_ddl

    export = TableExports().export(SchemaContext(schema_=parse_ddl(DDL), dialect="sqlite"), TableExportPolicy(max_rows_per_table=1, refresh_s=1))
    assert all(t.rows == [] for t in export.tables.tables) and export.tables.key.startswith("schema-")
    table = parse_ddl(DDL).tables[0].model_copy(update={"name": "sales.singer"})
    assert select_all(table, "postgres") == 'SELECT "singer_id", "name", "country", "age" FROM "sales"."singer"'


def test_table_files_are_what_spacet_reads_written_once(database: DatabaseConfig, tmp_path: Path) -> None:
    tables = TableExports().export(context_for(database), TableExportPolicy(max_rows_per_table=10, refresh_s=60)).tables
    directory = write_table_files(tables, tmp_path / "cache")
    lines = (directory / TABLE_FILE).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert sorted(r["table_id"] for r in records) == ["concert", "singer"]
    singer = next(r for r in records if r["table_id"] == "singer")
    assert singer["header_name"] == singer["header_id"] == ["singer_id", "name", "country", "age"]
    assert singer["header_types"] == ["number", "text", "text", "number"]
    assert singer["header_attribute"] == ["PRIMARY", "", "", ""] and singer["header_units"] == ["", "", "", ""]
    assert ["1", "王菲", "中国", "55"] in singer["rows"]
    assert (directory / "synonym.txt").read_text() == ""
    before = (directory / TABLE_FILE).stat().st_mtime_ns
    assert write_table_files(tables, tmp_path / "cache") == directory
    assert (directory / TABLE_FILE).stat().st_mtime_ns == before
    assert table_record(tables.table("singer")) == singer


# ---- the request path ----------------------------------------------------------------------------


def test_the_answer_is_rendered_checked_and_run_with_the_structured_query(database: DatabaseConfig) -> None:
    engine = RecordingEngine(StructuredQuery(table="singer", sel=[1], agg=[0], conds=[(2, 2, "中国")], cond_conn_op=0))
    response = ask(engine, context_for(database, execute=True), execute=True)
    assert response.success and response.validated and response.error is None
    assert response.sql == """SELECT "name" FROM "singer" WHERE "country" = '中国'"""
    assert sorted(response.rows) == [["周杰伦"], ["王菲"]] and response.columns == ["name"]
    assert response.structured_query == {"sel": [1], "agg": [0], "conds": [[2, 2, "中国"]], "cond_conn_op": 0, "from": ["singer"]}
    assert response.raw_output == "SELECT ... (SPACE-T's own text)" and response.tables_used == ["singer"]
    question, tables, previous = engine.calls[0]
    assert question == "中国歌手有哪些" and previous is None and response.history_used == 0
    assert {t.name for t in tables.tables} == {"singer", "concert"} and len(tables.table("concert").rows) == 2


def test_history_reaches_the_engine_as_the_last_turns_structured_query(database: DatabaseConfig) -> None:
    engine = RecordingEngine(StructuredQuery(table="singer", sel=[1], agg=[0], conds=[(3, 0, "40")]))
    history = [
        {"question": "有哪些歌手", "sql": "SELECT name FROM singer"},
        {"question": "中国的呢", "sql": """SELECT "name" FROM "singer" WHERE "country" = '中国'"""},
    ]
    response = ask(engine, context_for(database), question="年龄大于40的呢", history=history)
    previous = engine.calls[0][2]
    assert previous.to_spacet() == {"sel": [1], "agg": [0], "conds": [[2, 2, "中国"]], "cond_conn_op": 0, "from": ["singer"]}
    assert response.history_used == 1 and response.history_dropped == 1
    assert any("last of the 2 history turns" in note for note in response.notes)
    assert response.rows is None and response.success  # not asked to run


@pytest.mark.parametrize(
    ("request_fields", "param", "needle"),
    [
        ({"history": [{"question": "q", "sql": "SELECT s.name FROM singer s JOIN concert c ON s.singer_id = c.singer_id"}]}, "history", "JOIN"),
        ({"history": [{"question": "q", "sql": "SELECT title FROM album"}]}, "history", "album"),
    ],
)
def test_history_spacet_cannot_follow_is_a_400_naming_it(database, request_fields, param, needle) -> None:
    engine = RecordingEngine(StructuredQuery(table="singer", sel=[1], agg=[0], conds=[]))
    with pytest.raises(TableQaUnsupported, match=needle) as raised:
        ask(engine, context_for(database), **request_fields)
    assert raised.value.status_code == 400 and raised.value.param == param and not engine.calls


def test_no_tables_is_a_400() -> None:
    engine = RecordingEngine(StructuredQuery(table="singer", sel=[1], agg=[0], conds=[]))
    with pytest.raises(TableQaUnsupported, match="database") as raised:
        ask(engine, SchemaContext(raw_text="singers and their ages", dialect="sqlite"), database=None)
    assert raised.value.status_code == 400 and not engine.calls


def test_the_answer_dialect_is_transpiled_and_switches_that_do_not_apply_are_noted(database: DatabaseConfig) -> None:
    engine = RecordingEngine(StructuredQuery(table="singer", sel=[3], agg=[2], conds=[]))
    context = context_for(database).model_copy(update={"dialect": "tsql"})
    response = ask(engine, context, evidence="age is in years", n=3, examples=2)
    assert response.sql == "SELECT MAX([age]) FROM [singer]" and response.dialect == "tsql"
    assert "SPACE-T takes no evidence: it was left out" in response.notes
    assert any("n was ignored" in note for note in response.notes)
    assert "SPACE-T takes no examples: they were left out" in response.notes


def test_warm_up_reads_the_tables_and_has_the_engine_index_them(database: DatabaseConfig) -> None:
    engine = RecordingEngine(StructuredQuery(table="singer", sel=[1], agg=[0], conds=[]))
    exports = TableExports()
    elapsed_ms = asyncio.run(table_qa.warm_up(engine, context_for(database), exports=exports))
    assert elapsed_ms > 0 and len(engine.prepared) == 1 and not engine.calls
    assert len(engine.prepared[0].table("singer").rows) == 3
    # The first question then finds the same export: same content key, nothing read again.
    again = exports.export(context_for(database), engine.export_policy)
    assert again.tables.key == engine.prepared[0].key
