"""Serving logic over the fake engine: request mapping, sampling merge, response and chunk shapes."""

from __future__ import annotations

import asyncio

from deployments.builder import parse_app_config
from deployments.config import PipelineSettings
from deployments.protocol.openai import ChatCompletionRequest, CompletionRequest, StreamOptions, UsageInfo
from deployments.protocol.sql import SqlGenerateRequest
from deployments.serving import openai_serving
from deployments.serving.sql_generation import generate_sql as run_pipeline
from tests.fakes import FakeEngine
from text2sql.pipeline.inputs import SchemaContext
from text2sql.pipeline.sampling import merge_sampling

CONFIG = parse_app_config(
    {"models": [{"name": "m", "source": "embedded:qwen2.5-coder-0.5b", "generation": {"max_tokens": 50, "stop": ["</s>"]}}]}
).models[0]


def run(coroutine):
    return asyncio.run(coroutine)


def generate_sql(engine, config, request, *, queue_ms):
    from text2sql.schema.ddl import parse_ddl

    schema = parse_ddl(request.schema_) if isinstance(request.schema_, str) else None
    resolved = SchemaContext(schema_=schema, dialect=request.dialect or "sqlite")
    return run_pipeline(engine, config, request, resolved, pipeline=PipelineSettings(max_repairs=0), queue_ms=queue_ms)


def test_merge_sampling_request_overrides_defaults_and_keeps_model_stops():
    merged = merge_sampling(CONFIG.generation, max_tokens=7, temperature=0.5, stop=["\n\n", "</s>"])
    assert merged.max_tokens == 7 and merged.temperature == 0.5
    assert merged.stop == ["</s>", "\n\n"]
    assert merge_sampling(CONFIG.generation).max_tokens == 50


def test_generate_sql_success_renders_the_template_and_extracts():
    engine = FakeEngine("```sql SELECT COUNT(*) FROM t; ```")
    request = SqlGenerateRequest(question="How many?", schema="CREATE TABLE t (a INT);", evidence="t is small")
    response = run(generate_sql(engine, CONFIG, request, queue_ms=1.5))
    assert response.success and response.sql == "SELECT COUNT(*) FROM t"
    assert response.model == "m" and response.timings.queue_ms == 1.5
    sent = engine.requests[0]
    assert sent.messages[0].role == "system" and "SQLite" in sent.messages[0].content
    assert "CREATE TABLE t (\n  a INT\n);" in sent.messages[1].content and "t is small" in sent.messages[1].content
    assert sent.sampling.temperature == 0.0 and sent.sampling.max_tokens == 50


def test_generate_sql_without_sql_is_a_failure_not_an_exception():
    response = run(generate_sql(FakeEngine("I do not know."), CONFIG, SqlGenerateRequest(question="q"), queue_ms=0))
    assert not response.success and "no SQL" in response.error and response.sql == ""


def test_generate_sql_reports_unparseable_and_truncated_sql():
    bad = run(generate_sql(FakeEngine("SELECT FROM WHERE ((("), CONFIG, SqlGenerateRequest(question="q"), queue_ms=0))
    assert not bad.success and "does not parse" in bad.error
    cut = run(
        generate_sql(FakeEngine("SELECT a FROM t WHERE a > 1 AND b < 2"), CONFIG, SqlGenerateRequest(question="q", max_tokens=4), queue_ms=0)
    )
    assert cut.sql == "SELECT a FROM t"
    assert not cut.success and "max_tokens" in cut.error


def test_generate_sql_in_the_requested_dialect():
    engine = FakeEngine("SELECT a FROM t LIMIT 1")
    run(generate_sql(engine, CONFIG, SqlGenerateRequest(question="q", dialect="postgres"), queue_ms=0))
    assert "PostgreSQL" in engine.requests[0].messages[0].content


def test_chat_completion_shape():
    request = ChatCompletionRequest(messages=[{"role": "user", "content": "hi there"}], max_completion_tokens=2, stop="x")
    response = run(openai_serving.chat_completion(FakeEngine("one two three"), CONFIG, request))
    assert response.choices[0].message.content == "one two"
    assert response.choices[0].finish_reason == "length"
    assert response.usage.total_tokens == response.usage.prompt_tokens + 2
    assert response.model == "m" and response.id.startswith("chatcmpl-")


def test_chat_stream_chunks_role_first_usage_last():
    request = ChatCompletionRequest(
        messages=[{"role": "user", "content": "hi"}], stream=True, stream_options=StreamOptions(include_usage=True)
    )

    async def collect():
        return [c async for c in openai_serving.chat_completion_stream(FakeEngine("a b c"), CONFIG, request)]

    *chunks, accounting = run(collect())
    assert accounting == chunks[-1].usage  # the ingress's copy for its metrics
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a b c"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    assert len({c.id for c in chunks}) == 1


def test_completion_stream_without_usage_option_sends_no_usage_chunk():
    async def collect():
        request = CompletionRequest(prompt="SELECT", stream=True)
        return [c async for c in openai_serving.completion_stream(FakeEngine("1 FROM t"), CONFIG, request)]

    *chunks, accounting = run(collect())
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].text for c in chunks) == "1 FROM t"
    # Counted for the metrics even though the client did not ask for usage.
    assert isinstance(accounting, UsageInfo) and accounting.completion_tokens == 3
