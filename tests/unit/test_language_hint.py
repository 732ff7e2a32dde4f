"""The Chinese-question note: detected from the question, placed after the schema, switched per app and request."""

from __future__ import annotations

import asyncio

import pytest

from deployments.builder import parse_app_config
from deployments.config import PipelineSettings
from deployments.protocol.sql import SqlGenerateRequest
from deployments.serving.sql_generation import generate_sql
from tests.fakes import FakeEngine
from text2sql.language import is_chinese
from text2sql.pipeline.inputs import SchemaContext
from text2sql.prompts.qwen_chat import CHINESE_QUESTION_NOTE
from text2sql.schema.ddl import parse_ddl

SCHEMA = parse_ddl("CREATE TABLE singer (id INTEGER PRIMARY KEY, name TEXT, country TEXT);")
CONFIG = parse_app_config({"models": [{"name": "m", "source": "embedded:qwen2.5-coder-0.5b"}]}).models[0]
CHINESE = "有多少歌手来自法国？"


@pytest.mark.parametrize(
    ("text", "chinese"),
    [
        (CHINESE, True),
        ("How many singers are from France?", False),
        ("How many singers are called 周杰伦 in the table singer?", False),  # one quoted name in an English question
        ("列出所有 singer 的 name", True),  # Chinese with English identifiers in it
        ("", False),
    ],
)
def test_a_question_is_chinese_when_han_characters_dominate(text, chinese):
    assert is_chinese(text) is chinese


def user_turn(question: str, *, pipeline: PipelineSettings, **request) -> str:
    engine = FakeEngine("SELECT COUNT(*) FROM singer")
    answer = asyncio.run(
        generate_sql(
            engine, CONFIG, SqlGenerateRequest(question=question, **request),
            SchemaContext(schema_=SCHEMA, dialect="sqlite"), pipeline=pipeline,
        )
    )
    assert answer.success
    return engine.requests[0].messages[-1].content


def test_the_note_follows_the_schema_and_precedes_the_question_when_switched_on():
    turn = user_turn(CHINESE, pipeline=PipelineSettings(language_hint=True))
    assert turn.index("CREATE TABLE singer") < turn.index(CHINESE_QUESTION_NOTE) < turn.index(CHINESE)


def test_english_questions_and_the_default_pipeline_get_no_note():
    assert CHINESE_QUESTION_NOTE not in user_turn("How many singers?", pipeline=PipelineSettings(language_hint=True))
    assert CHINESE_QUESTION_NOTE not in user_turn(CHINESE, pipeline=PipelineSettings())


def test_a_request_overrides_the_app_either_way():
    assert CHINESE_QUESTION_NOTE in user_turn(CHINESE, pipeline=PipelineSettings(), language_hint=True)
    assert CHINESE_QUESTION_NOTE not in user_turn(
        CHINESE, pipeline=PipelineSettings(language_hint=True), language_hint=False
    )
