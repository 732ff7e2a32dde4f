"""Example pairs: loading a store, BM25 retrieval, and where the pairs land in the prompt."""

from __future__ import annotations

import json

import pytest

from deployments.databases import DatabaseConfig
from deployments.protocol.sql import SqlGenerateRequest
from deployments.schema_resolver import SchemaResolver
from text2sql.examples import ExampleIndex, ExamplePair, ExampleStoreError, load_examples, tokens
from text2sql.pipeline.settings import PipelineSettings
from text2sql.prompts import PromptInput, get_template

PAIRS = [
    {"question": "How many singers are there?", "query": "SELECT count(*) FROM singer"},
    {"question": "How many concerts are there?", "query": "SELECT count(*) FROM concert"},
    {"question": "What is the average age of all students?", "query": "SELECT avg(age) FROM student"},
    {"question": "List the names of stadiums ordered by capacity.", "query": "SELECT name FROM stadium ORDER BY capacity"},
    {"question": "How many  singers exist?", "query": "SELECT  count(*)  FROM  singer"},
]


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(PAIRS))
    return path


def test_spider_style_and_json_lines_stores_load(store, tmp_path):
    pairs = load_examples(store)
    assert pairs[0] == ExamplePair(question="How many singers are there?", sql="SELECT count(*) FROM singer")
    lines = tmp_path / "pairs.jsonl"
    lines.write_text("\n".join(json.dumps({"question": p["question"], "sql": p["query"]}) for p in PAIRS))
    assert load_examples(lines) == pairs


@pytest.mark.parametrize("content", ["not json", '[{"question": "q"}]', '[["q", "SELECT 1"]]'])
def test_a_bad_store_is_a_clear_error(tmp_path, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ExampleStoreError, match="bad.json"):
        load_examples(path)


def test_nearest_pairs_come_by_similarity_without_repeating_sql(store):
    index = ExampleIndex(load_examples(store))
    # The reworded duplicate of the same SQL is skipped, and so is a pair that shares no word but "how many".
    assert [p.sql for p in index.nearest("How many singers do we have?", 2)] == ["SELECT count(*) FROM singer"]
    # The closest comes last, nearest the question.
    both = index.nearest("singers and stadiums ordered by capacity", 2)
    assert [p.sql for p in both] == ["SELECT count(*) FROM singer", "SELECT name FROM stadium ORDER BY capacity"]
    assert index.nearest("average age of students", 1)[0].sql == "SELECT avg(age) FROM student"
    assert index.nearest("zebra xylophone", 2) == []  # nothing shared: nothing shown
    assert index.nearest("How many singers?", 0) == []


def test_chinese_questions_are_tokenised_by_character():
    assert tokens("有多少歌手") == ["有", "多", "少", "歌", "手"]
    index = ExampleIndex([ExamplePair(question="有多少歌手？", sql="SELECT count(*) FROM singer"),
                          ExamplePair(question="列出所有体育场", sql="SELECT name FROM stadium")])
    assert index.nearest("歌手有几个", 1)[0].sql == "SELECT count(*) FROM singer"


def test_examples_follow_the_schema_and_precede_the_question():
    rendered = get_template("qwen-chat").render(PromptInput(
        question="How many singers?", schema_text="CREATE TABLE singer (id INT);",
        examples=[ExamplePair(question="How many concerts?", sql="SELECT count(*) FROM concert")],
    ))
    user = rendered.messages[-1].content
    assert user.index("CREATE TABLE singer") < user.index("SQL: SELECT count(*) FROM concert") < user.index(
        "Question: How many singers?")


def test_the_resolver_picks_the_databases_store_over_the_apps(store, tmp_path):
    own = tmp_path / "own.jsonl"
    own.write_text(json.dumps({"question": "How many singers in the choir?", "sql": "SELECT count(*) FROM choir"}))
    db = tmp_path / "d.sqlite"
    import sqlite3

    sqlite3.connect(db).execute("CREATE TABLE singer (id INT)").connection.close()
    resolver = SchemaResolver(
        {"own": DatabaseConfig(url=f"sqlite:///{db}", examples=str(own)), "plain": DatabaseConfig(url=f"sqlite:///{db}")},
        PipelineSettings(examples=1, example_store=str(store)),
    )
    ask = "How many singers?"
    assert resolver.resolve(SqlGenerateRequest(question=ask, database="own")).examples[0].sql.endswith("choir")
    assert resolver.resolve(SqlGenerateRequest(question=ask, database="plain")).examples[0].sql.endswith("singer")
    assert resolver.resolve(SqlGenerateRequest(question=ask, database="plain", examples=0)).examples == []
    broken = SchemaResolver({}, PipelineSettings(examples=2, example_store=str(tmp_path / "missing.json")))
    assert broken.resolve(SqlGenerateRequest(question=ask, schema="CREATE TABLE t (a INT)")).examples == []
