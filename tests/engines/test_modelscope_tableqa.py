"""`backend: modelscope_tableqa` on a tiny random SPACE-T (modelscope's own model classes, a config and vocabulary
written by the test): modelscope's real preprocessor, model and table-question-answering pipeline run end to end
over a two-table SQLite database exported into SPACE-T's table files, and a second turn follows up on the first.

Random weights give arbitrary queries, so the checks are on structure: the query names a real table and its
real columns, the SQL built from it validates and runs on the database, the history reached the preprocessor as
SPACE-T's `history_sql`. Needs the `[modelscope]` extra (skipped without it).
"""

from __future__ import annotations

import asyncio
import copy
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("modelscope")
pytest.importorskip("datasets", reason="modelscope's pipelines import datasets: install the [modelscope] extra")

from deployments.config import ModelConfig  # noqa: E402
from deployments.databases import DatabaseConfig  # noqa: E402
from deployments.engines.modelscope_tableqa import ModelScopeTableQaEngine  # noqa: E402
from deployments.engines.settings import ModelScopeTableQaSettings  # noqa: E402
from deployments.protocol.sql import SqlGenerateRequest  # noqa: E402
from deployments.serving import table_qa  # noqa: E402
from deployments.serving.table_exports import TableExports  # noqa: E402
from tests.engines.spacet_model import write_tiny_spacet  # noqa: E402
from text2sql.execution import execute_read_only  # noqa: E402
from text2sql.pipeline.engine import GenerationRequest, SamplingParams  # noqa: E402
from text2sql.pipeline.inputs import SchemaContext  # noqa: E402
from text2sql.schema.introspect import introspect  # noqa: E402
from text2sql.table_qa import (  # noqa: E402
    GenerationNotSupported,
    QaColumn,
    QaTable,
    QaTables,
    TableExportPolicy,
    TablesTooWide,
    query_from_sql,
    render_sql,
)
from text2sql.validation import validate_sql  # noqa: E402

DDL = """
CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);
CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, singer_id INTEGER, city TEXT, year INTEGER);
"""
SINGERS = [(1, "王菲", "中国", 55), (2, "Adele", "英国", 36), (3, "周杰伦", "中国", 45)]
CONCERTS = [(1, 1, "北京", 2019), (2, 3, "上海", 2023), (3, 2, "伦敦", 2024)]
FIRST = "北京有哪些演唱会"
FOLLOW_UP = "上海的呢"
WORDS = [*"北京上海伦敦中国英国王菲周杰伦有哪些演唱会的呢歌手年龄多少", "singer", "concert", "name", "country", "age", "city", "year", "id", "_"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return write_tiny_spacet(tmp_path_factory.mktemp("spacet"), words=WORDS)


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> DatabaseConfig:
    path = tmp_path_factory.mktemp("db") / "music.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(DDL)
        conn.executemany("INSERT INTO singer VALUES (?, ?, ?, ?)", SINGERS)
        conn.executemany("INSERT INTO concert VALUES (?, ?, ?, ?)", CONCERTS)
    return DatabaseConfig(url=f"sqlite:///{path}")


@pytest.fixture(scope="module")
def context(database: DatabaseConfig) -> SchemaContext:
    return SchemaContext(
        schema_=introspect(database.resolve_url()),
        dialect="sqlite",
        database="music",
        database_dialect="sqlite",
        target=database.execution_target(),
        source=database.execution_target(),
    )


@pytest.fixture(scope="module")
def tables(context: SchemaContext) -> QaTables:
    return TableExports().export(context, TableExportPolicy(max_rows_per_table=100, refresh_s=60)).tables


@pytest.fixture(scope="module")
def engine(model_dir: Path, tmp_path_factory) -> ModelScopeTableQaEngine:
    engine = ModelScopeTableQaEngine(
        model_dir, ModelScopeTableQaSettings(max_cached_databases=2), num_threads=1,
        cache_dir=tmp_path_factory.mktemp("tables"),
    )
    asyncio.run(engine.start())
    return engine


@pytest.fixture
def history_seen(monkeypatch) -> list:
    """What modelscope's preprocessor was called with as `history_sql`, call by call (it still runs)."""
    from modelscope.preprocessors import TableQuestionAnsweringPreprocessor

    seen: list = []
    original = TableQuestionAnsweringPreprocessor.__call__

    def recording(self, data):
        seen.append(copy.deepcopy(data.get("history_sql")))  # the pipeline edits it in place afterwards
        return original(self, data)

    monkeypatch.setattr(TableQuestionAnsweringPreprocessor, "__call__", recording)
    return seen


def check_structure(answer, tables: QaTables, context: SchemaContext) -> str:
    """The query is over a real table and its columns, and its SQL validates and runs; returns the SQL."""
    table = tables.table(answer.query.table)
    assert table is not None, f"SPACE-T answered over {answer.query.table!r}, not one of {[t.name for t in tables.tables]}"
    assert answer.query.sel and all(0 <= s <= len(table.columns) for s in answer.query.sel)
    assert all(0 <= c[0] <= len(table.columns) for c in answer.query.conds)
    assert f"`{table.name}`" in answer.model_sql  # SPACE-T's own SQL text names the same table
    sql = render_sql(answer.query, table, "sqlite")
    assert validate_sql(sql, dialect="sqlite", schema=context.schema_).valid, sql
    execute_read_only(context.source.url, sql)  # runs on the database (raises if it cannot)
    return sql


def test_a_first_turn_and_a_follow_up_through_the_real_pipeline(engine, tables, context, history_seen) -> None:
    first = asyncio.run(engine.answer(FIRST, tables, None))
    first_sql = check_structure(first, tables, context)
    assert history_seen == [None] and not first.history_used

    previous = query_from_sql(first_sql, tables, "sqlite")  # what a client's history turn becomes
    second = asyncio.run(engine.answer(FOLLOW_UP, tables, previous))
    check_structure(second, tables, context)
    assert history_seen[1] == previous.to_spacet() and second.history_used
    assert history_seen[1]["from"] == [first.query.table]


def test_a_follow_up_whose_merge_fails_is_asked_over_the_previous_table(engine, tables, monkeypatch) -> None:
    """SPACE-T's follow-up merge can index one table's columns with another's (an IndexError in its own SQL
    writer): the engine asks again with schema linking held to the previous turn's table."""
    from modelscope.pipelines.nlp.table_question_answering_pipeline import TableQuestionAnsweringPipeline
    from modelscope.preprocessors import TableQuestionAnsweringPreprocessor

    asked_over: list = []
    preprocess = TableQuestionAnsweringPreprocessor.__call__
    write_sql = TableQuestionAnsweringPipeline.sql_dict_to_str

    def recording(self, data):
        asked_over.append(data.get("table_id"))
        return preprocess(self, data)

    def failing_once(self, result, tables):
        if len(asked_over) == 1:
            raise IndexError("list index out of range")  # what SPACE-T raises on a merge over two tables
        return write_sql(self, result, tables)

    monkeypatch.setattr(TableQuestionAnsweringPreprocessor, "__call__", recording)
    monkeypatch.setattr(TableQuestionAnsweringPipeline, "sql_dict_to_str", failing_once)
    previous = query_from_sql("SELECT name FROM singer WHERE country = '中国'", tables, "sqlite")
    answer = asyncio.run(engine.answer(FOLLOW_UP, tables, previous))
    assert asked_over == [None, "singer"] and answer.query.table == "singer" and answer.history_used


def test_the_request_path_answers_runs_and_follows_up(engine, context) -> None:
    config = ModelConfig(name="spacet", source="/models/spacet", backend="modelscope_tableqa")
    first = asyncio.run(
        table_qa.generate_sql(engine, config, SqlGenerateRequest(question=FIRST, database="music", execute=True), context)
    )
    assert first.success and first.validated and first.rows is not None and first.columns
    assert first.structured_query["from"][0] in ("singer", "concert") and first.raw_output.startswith("SELECT")
    follow_up = SqlGenerateRequest(
        question=FOLLOW_UP, database="music", execute=True, history=[{"question": FIRST, "sql": first.sql}]
    )
    second = asyncio.run(table_qa.generate_sql(engine, config, follow_up, context))
    assert second.success and second.history_used == 1 and second.structured_query is not None


def test_table_files_are_cached_per_content_and_the_index_is_bounded(engine, tables) -> None:
    asyncio.run(engine.answer(FIRST, tables, None))
    assert (engine._cache_dir / tables.key / "table.json").is_file()
    others = [
        QaTables(key=f"other-{n}", tables=[QaTable(name=f"t{n}", columns=[QaColumn(name="城市", kind="text")], rows=[["北京"]])])
        for n in range(2)
    ]
    for other in others:
        answer = asyncio.run(engine.answer(FIRST, other, None))
        assert answer.query.table == other.tables[0].name  # the only table it was given
    assert list(engine._pipelines) == ["other-0", "other-1"]  # max_cached_databases=2: the oldest left


def test_a_table_too_wide_for_the_encoder_is_refused(engine) -> None:
    wide = QaTables(key="wide", tables=[QaTable(name="wide", columns=[QaColumn(name=f"c{i}", kind="number") for i in range(600)])])
    with pytest.raises(TablesTooWide, match="512"):
        asyncio.run(engine.answer(FIRST, wide, None))


def test_it_writes_no_free_text(engine) -> None:
    request = GenerationRequest(prompt="SELECT", sampling=SamplingParams(max_tokens=4))
    with pytest.raises(GenerationNotSupported, match="/v1/sql/generate"):
        asyncio.run(engine.generate(request))
    assert engine.capabilities.table_qa and engine.capabilities.context_length == 512
