"""Translating a Chinese question first (`translate_question`): one short generation, then the SQL prompt
carries the English question; English questions and the default pipeline make no extra call."""

from __future__ import annotations

import asyncio

from deployments.builder import parse_app_config
from deployments.config import PipelineSettings
from deployments.protocol.sql import SqlGenerateRequest
from deployments.serving.sql_generation import generate_sql
from tests.fakes import FakeEngine
from text2sql.pipeline.inputs import SchemaContext
from text2sql.pipeline.translation import INSTRUCTION
from text2sql.schema.ddl import parse_ddl

SCHEMA = parse_ddl("CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT, country TEXT);")
CONFIG = parse_app_config({"models": [{"name": "m", "source": "embedded:qwen2.5-coder-0.5b"}]}).models[0]
CHINESE = "有多少歌手来自法国？"
ENGLISH = "How many singers are from France?"


def ask(engine: FakeEngine, question: str, *, pipeline: PipelineSettings, **request):
    return asyncio.run(
        generate_sql(
            engine, CONFIG, SqlGenerateRequest(question=question, **request),
            SchemaContext(schema_=SCHEMA, dialect="sqlite"), pipeline=pipeline,
        )
    )


def test_a_chinese_question_is_asked_in_english() -> None:
    engine = FakeEngine([ENGLISH, "SELECT COUNT(*) FROM singer WHERE country = 'France'"])
    answer = ask(engine, CHINESE, pipeline=PipelineSettings(translate_questions=True))
    assert answer.success
    first, second = engine.requests
    assert first.messages[-1].content == f"{INSTRUCTION}\n\n{CHINESE}"
    assert first.sampling.temperature == 0
    sql_turn = second.messages[-1].content
    assert ENGLISH in sql_turn and CHINESE not in sql_turn
    assert f"asked in English as: {ENGLISH}" in answer.notes
    # Both generations are counted.
    assert answer.usage.completion_tokens == len(ENGLISH.split()) + len(answer.raw_output.split())


def test_english_questions_and_the_default_pipeline_make_no_extra_call() -> None:
    engine = FakeEngine("SELECT COUNT(*) FROM singer")
    ask(engine, ENGLISH, pipeline=PipelineSettings(translate_questions=True))
    ask(engine, CHINESE, pipeline=PipelineSettings())
    assert len(engine.requests) == 2
    assert all(INSTRUCTION not in r.messages[-1].content for r in engine.requests)


def test_a_request_overrides_the_app() -> None:
    engine = FakeEngine([ENGLISH, "SELECT COUNT(*) FROM singer"])
    ask(engine, CHINESE, pipeline=PipelineSettings(), translate_question=True)
    assert len(engine.requests) == 2
    engine = FakeEngine("SELECT COUNT(*) FROM singer")
    ask(engine, CHINESE, pipeline=PipelineSettings(translate_questions=True), translate_question=False)
    assert len(engine.requests) == 1


def test_an_unusable_translation_leaves_the_question_as_written() -> None:
    engine = FakeEngine(["", "SELECT COUNT(*) FROM singer"])
    answer = ask(engine, CHINESE, pipeline=PipelineSettings(translate_questions=True))
    assert CHINESE in engine.requests[1].messages[-1].content
    assert "the question could not be put into English; it was asked as written" in answer.notes
