"""The real Transformers engine, in-process, on the embedded Qwen2.5-Coder 0.5B GGUF (dequantized by transformers'
GGUF loader, cached after the first run): SQL through the core pipeline, stop strings, streaming, left-padded
batches, cancellation, the time limit, and the converted checkpoint.

Needs the `[transformers]` extra (skipped without it). The first run converts the GGUF (about a minute).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from deployments.databases import DatabaseConfig  # noqa: E402
from deployments.engines.settings import TransformersSettings  # noqa: E402
from deployments.engines.transformers import TransformersEngine  # noqa: E402
from deployments.engines.transformers_loading import CONVERSION_MARKER, converted_checkpoint  # noqa: E402
from text2sql.pipeline.engine import (  # noqa: E402
    EmptyPrompt,
    GenerationRequest,
    GenerationTimeout,
    PromptTooLong,
    SamplingParams,
)
from text2sql.pipeline.generate import generate_sql  # noqa: E402
from text2sql.pipeline.inputs import SchemaContext, SqlTask  # noqa: E402
from text2sql.pipeline.settings import ModelProfile, PipelineSettings  # noqa: E402
from text2sql.prompts import ChatMessage  # noqa: E402
from text2sql.schema.ddl import parse_ddl  # noqa: E402

DDL = "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department TEXT, age INTEGER);"
EMPLOYEES = [(1, "Alice", "Engineering", 34), (2, "Bob", "Engineering", 28), (3, "Carol", "Sales", 45)]
LIST_REQUEST = [ChatMessage(role="user", content="Count from 1 to 20 in words, separated by commas.")]


# One thread: beside other work on 2 cores, two torch threads spin against it and run several times slower.
@pytest.fixture(scope="module")
def engine(embedded_model_path: Path) -> Iterator[TransformersEngine]:
    engine = TransformersEngine(embedded_model_path, TransformersSettings(), num_threads=1)
    asyncio.run(engine.start())
    yield engine


def run(coroutine):
    return asyncio.run(coroutine)


def chat(messages: list[ChatMessage], **sampling) -> GenerationRequest:
    return GenerationRequest(messages=messages, sampling=SamplingParams(**{"max_tokens": 16, **sampling}))


def test_answers_a_sql_question_that_runs_on_sqlite(engine: TransformersEngine, tmp_path: Path) -> None:
    database = tmp_path / "employees.sqlite"
    with sqlite3.connect(database) as conn:
        conn.execute(DDL)
        conn.executemany("INSERT INTO employees VALUES (?, ?, ?, ?)", EMPLOYEES)
    target = DatabaseConfig(url=f"sqlite:///{database}").execution_target()
    context = SchemaContext(schema_=parse_ddl(DDL), dialect="sqlite", database_dialect="sqlite", target=target)
    answer = run(
        generate_sql(
            engine,
            SqlTask(question="How many employees work in Engineering?", max_tokens=48),
            context,
            model=ModelProfile(name="qwen-hf", prompt_template="qwen-chat"),
            settings=PipelineSettings(),
            context_length=engine.capabilities.context_length,
        )
    )
    assert answer.success, answer.error
    assert answer.rows == [[2]], answer.sql
    assert answer.usage.completion_tokens > 0 and answer.usage.prompt_tokens > 50


def test_a_stop_string_cuts_the_text_and_stops_generating(engine: TransformersEngine) -> None:
    full = run(engine.generate(chat(LIST_REQUEST)))
    words = full.text.split(", ")
    assert len(words) > 3 and full.finish_reason == "length", full.text
    stop = ", " + words[2]  # "One, Two, Three, ...": stops before ", Three"
    stopped = run(engine.generate(chat(LIST_REQUEST, stop=[stop, "never appears"])))
    assert stopped.text == full.text[: full.text.index(stop)]
    assert stopped.finish_reason == "stop" and stopped.completion_tokens < full.completion_tokens


def test_a_stream_gives_the_same_text_and_counts(engine: TransformersEngine) -> None:
    async def collect():
        return [chunk async for chunk in engine.stream(chat(LIST_REQUEST, max_tokens=8))]

    chunks = run(collect())
    alone = run(engine.generate(chat(LIST_REQUEST, max_tokens=8)))
    texts = [c.text for c in chunks if c.text]
    assert len(texts) > 2 and "".join(texts) == alone.text
    assert chunks[-2].finish_reason == "length"
    assert (chunks[-1].prompt_tokens, chunks[-1].completion_tokens) == (alone.prompt_tokens, alone.completion_tokens)


def test_left_padded_rows_of_a_batch_match_the_same_requests_alone(engine: TransformersEngine) -> None:
    requests = [
        chat(LIST_REQUEST, max_tokens=6),
        GenerationRequest(prompt="SELECT name FROM employees WHERE", sampling=SamplingParams(max_tokens=8, stop=[";"])),
        chat([ChatMessage(role="user", content="Write SQL that counts the rows of table t.")], max_tokens=10),
    ]
    alone = [run(engine.generate(request)) for request in requests]
    rows = [engine._row(request) for request in requests]
    run(engine._run_batch(rows))  # what serve.batch calls with concurrent requests
    assert engine.batch_sizes[-1] == 3
    assert [row.output() for row in rows] == alone


def test_prompts_that_cannot_run_are_refused_before_generating(engine: TransformersEngine) -> None:
    with pytest.raises(PromptTooLong, match="context window"):
        run(engine.generate(chat(LIST_REQUEST, max_tokens=engine.capabilities.context_length)))
    with pytest.raises(EmptyPrompt):
        run(engine.generate(GenerationRequest(prompt="", sampling=SamplingParams(max_tokens=4))))


def test_a_cancelled_generation_stops_and_frees_the_model(engine: TransformersEngine) -> None:
    async def cancel_midway() -> tuple[float, str]:
        task = asyncio.ensure_future(engine.generate(chat(LIST_REQUEST, max_tokens=400)))
        await asyncio.sleep(2.0)
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stopped_after = time.monotonic() - cancelled_at
        # The model is free again: the next request runs at once.
        after = await engine.generate(chat(LIST_REQUEST, max_tokens=3))
        return stopped_after, after.text

    stopped_after, text = run(cancel_midway())
    assert stopped_after < 5.0 and text
    assert not engine._model_lock.locked()


def test_the_time_limit_stops_a_generation(engine: TransformersEngine, monkeypatch) -> None:
    monkeypatch.setattr(engine, "_generation_timeout_s", 1.0)
    started = time.monotonic()
    with pytest.raises(GenerationTimeout, match="generation_timeout_s"):
        run(engine.generate(chat(LIST_REQUEST, max_tokens=400)))
    assert time.monotonic() - started < 15


def test_the_gguf_is_converted_once_into_a_plain_checkpoint(engine: TransformersEngine, embedded_model_path) -> None:
    assert engine._model.hf_quantizer is None if hasattr(engine._model, "hf_quantizer") else True
    assert not getattr(engine._model, "is_quantized", False)
    assert getattr(engine._model.config, "quantization_config", None) is None
    started = time.monotonic()
    directory = converted_checkpoint(embedded_model_path, TransformersSettings())
    assert time.monotonic() - started < 30  # hashed, not converted again
    marker = json.loads((directory / CONVERSION_MARKER).read_text())
    assert marker["size_bytes"] == embedded_model_path.stat().st_size and len(marker["sha256"]) == 64
    config = json.loads((directory / "config.json").read_text())
    assert "quantization_config" not in config and (directory / "model.safetensors").is_file()
