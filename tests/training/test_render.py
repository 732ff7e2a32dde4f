"""Prompt parity: a training example's prompt is exactly the one the served pipeline sends to its engine."""

from __future__ import annotations

import asyncio
import json

import pytest

from deployments.builder import parse_app_config
from deployments.databases import DatabaseConfig
from deployments.protocol.sql import SqlGenerateRequest
from deployments.schema_resolver import SchemaResolver
from deployments.serving.sql_generation import generate_sql, model_profile
from tests.fakes import FakeEngine
from text2sql.pipeline.settings import PipelineSettings
from text2sql.prompts import HistoryTurn
from training.records import TrainingRecord
from training.render import RenderError, render_example, template_id

SETTINGS = PipelineSettings(max_repairs=0)
HISTORY = [HistoryTurn(question="Who lives in the UK?", sql="SELECT name FROM customers WHERE country = 'UK'")]


def model_config(template: str):
    return parse_app_config(
        {"models": [{"name": "m", "source": "embedded:qwen2.5-coder-0.5b", "prompt_template": template}]}
    ).models[0]


def served_request(engine: FakeEngine, template: str, resolver: SchemaResolver, request: SqlGenerateRequest):
    """What serving sends to the engine for `request`: the ingress resolves the schema, the model server runs the pipeline."""
    context = resolver.resolve(request)
    asyncio.run(generate_sql(engine, model_config(template), request, context, pipeline=SETTINGS))
    return engine.requests[0]


def rendered(record: TrainingRecord, template: str, resolver: SchemaResolver, *, context_length: int = 4096) -> dict:
    return render_example(
        record, model=model_profile(model_config(template)), resolver=resolver, settings=SETTINGS,
        context_length=context_length,
    )


@pytest.fixture
def resolver(shop_db) -> SchemaResolver:
    return SchemaResolver({"shop": DatabaseConfig(url=f"sqlite:///{shop_db}")}, SETTINGS)


def test_chat_prompt_is_the_served_prompt_and_the_completion_is_the_gold_sql(resolver):
    gold = "SELECT name FROM customers WHERE country = 'USA'"
    record = TrainingRecord(
        question="And in the USA?", database="shop", sql=gold, evidence="USA is a country code", history=HISTORY
    )
    engine = FakeEngine(gold)
    sent = served_request(engine, "qwen-chat", resolver, SqlGenerateRequest(
        question="And in the USA?", database="shop", evidence="USA is a country code", history=HISTORY,
    ))
    example = rendered(record, "qwen-chat", resolver)
    assert example["prompt"] == [message.model_dump() for message in sent.messages]
    assert "Who lives in the UK?" in json.dumps(example["prompt"]) and "CREATE TABLE" in json.dumps(example["prompt"])
    assert example["completion"] == [{"role": "assistant", "content": gold}]


def test_raw_prompt_templates_give_a_prompt_string_and_the_sql_in_the_models_own_dialect(resolver):
    record = TrainingRecord(question="Countries?", database="shop", sql="SELECT IFNULL(country, 'none') FROM customers")
    engine = FakeEngine("SELECT country FROM customers")
    sent = served_request(engine, "sqlcoder-legacy", resolver, SqlGenerateRequest(question="Countries?", database="shop"))
    example = rendered(record, "sqlcoder-legacy", resolver)
    assert example["prompt"] == sent.prompt and sent.messages is None
    # sqlcoder writes PostgreSQL (serving transpiles its answers back), so that is what it is taught.
    assert example["completion"] == "SELECT COALESCE(country, 'none') FROM customers"


def test_gold_sql_on_tables_the_fitted_prompt_left_out_is_refused(resolver):
    record = TrainingRecord(question="How many customers?", database="shop", sql="SELECT COUNT(*) FROM orders")
    assert rendered(record, "qwen-chat", resolver)["completion"][0]["content"] == "SELECT COUNT(*) FROM orders"
    with pytest.raises(RenderError, match="fails against the schema the prompt shows"):
        rendered(record, "qwen-chat", resolver, context_length=300)


def test_an_example_store_holding_the_answer_is_refused(shop_db, tmp_path):
    store = tmp_path / "store.jsonl"
    store.write_text(json.dumps({"question": "Count the customers.", "sql": "SELECT  count(*) FROM customers;"}) + "\n")
    with_examples = PipelineSettings(max_repairs=0, examples=1, example_store=str(store))
    resolver = SchemaResolver({"shop": DatabaseConfig(url=f"sqlite:///{shop_db}")}, with_examples)
    leaked = TrainingRecord(question="How many customers?", database="shop", sql="SELECT COUNT(*) FROM customers")
    with pytest.raises(RenderError, match="example store holds this record's answer"):
        rendered(leaked, "qwen-chat", resolver)
    other = TrainingRecord(question="How many customers?", database="shop", sql="SELECT COUNT(id) FROM customers")
    assert "Count the customers." in json.dumps(rendered(other, "qwen-chat", resolver)["prompt"])


def test_template_id_names_the_models_family():
    assert template_id(model_profile(model_config("sqlcoder-legacy"))) == "sqlcoder-legacy"
