"""The real vLLM engine on a small model: needs a CUDA GPU and the `[vllm]` extra, skips cleanly otherwise.

    pip install -e '.[vllm,dev]'      # in the GPU image: cluster/images/gpu.Dockerfile
    HF_HUB_OFFLINE=0 pytest -m gpu tests/gpu/test_vllm_engine.py

The model is TEXT2SQL_VLLM_TEST_MODEL (a model source: 'hf:<repo>' or a local Hugging Face directory),
by default hf:Qwen/Qwen2.5-Coder-0.5B-Instruct; the tests skip when it cannot be fetched.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
import sqlglot

from deployments.builder import parse_app_config
from deployments.engines.vllm import VllmEngine, build
from deployments.model_source import ModelSourceError, parse_model_source, resolve_model_path
from text2sql.grammar import build_sql_grammar
from text2sql.pipeline.engine import EngineError, GenerationRequest, SamplingParams
from text2sql.prompts import ChatMessage
from text2sql.schema.model import Column, DatabaseSchema, Table

pytestmark = pytest.mark.gpu

MODEL_SOURCE = os.environ.get("TEXT2SQL_VLLM_TEST_MODEL", "hf:Qwen/Qwen2.5-Coder-0.5B-Instruct")
SCHEMA = DatabaseSchema(
    name="music",
    tables=[
        Table(name="Artist", columns=[Column(name="ArtistId", type="INTEGER"), Column(name="Name", type="TEXT")]),
        Table(
            name="Album",
            columns=[
                Column(name="AlbumId", type="INTEGER"),
                Column(name="Title", type="TEXT"),
                Column(name="ArtistId", type="INTEGER"),
            ],
        ),
    ],
)
QUESTION = [
    ChatMessage(role="system", content="Answer with one SQLite query and nothing else."),
    ChatMessage(
        role="user",
        content="Tables: Artist(ArtistId, Name), Album(AlbumId, Title, ArtistId).\nHow many albums has each artist?",
    ),
]


def _require_gpu_and_vllm() -> None:
    try:
        import torch
    except ImportError:
        pytest.skip("torch is not installed, so no CUDA either")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    try:
        import vllm  # noqa: F401
    except ImportError:
        pytest.skip("vllm is not installed: pip install '.[vllm]' (GPU image: cluster/images/gpu.Dockerfile)")


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # vLLM's output handler lives on the loop of the first request: every test uses this one.
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def engine(loop: asyncio.AbstractEventLoop) -> VllmEngine:
    _require_gpu_and_vllm()
    try:
        model_path = resolve_model_path(parse_model_source(MODEL_SOURCE))
    except ModelSourceError as e:
        pytest.skip(f"test model {MODEL_SOURCE} not available: {e}")
    config = parse_app_config(
        {
            "models": [
                {
                    "name": "vllm-test",
                    "backend": "vllm",
                    "source": str(model_path),
                    "engine": {"max_model_len": 4096, "gpu_memory_utilization": 0.5, "max_num_seqs": 8},
                    "generation_timeout_s": 60,
                }
            ]
        }
    ).models[0]
    engine = build(config, model_path)
    loop.run_until_complete(engine.start())
    return engine


def chat(max_tokens: int = 128, **sampling) -> GenerationRequest:
    return GenerationRequest(messages=QUESTION, sampling=SamplingParams(max_tokens=max_tokens, **sampling))


def test_capabilities(engine: VllmEngine) -> None:
    capabilities = engine.capabilities
    assert capabilities.context_length == 4096 and capabilities.grammar
    assert capabilities.max_concurrent_requests == 8 and not capabilities.adapters


def test_chat_generation_answers_in_sql(engine: VllmEngine, loop: asyncio.AbstractEventLoop) -> None:
    output = loop.run_until_complete(engine.generate(chat(seed=1)))
    assert "select" in output.text.lower() and output.finish_reason in ("stop", "length")
    assert output.prompt_tokens > 20 and 0 < output.completion_tokens <= 128


def test_greedy_is_repeatable_and_stop_strings_hold(engine: VllmEngine, loop: asyncio.AbstractEventLoop) -> None:
    first = loop.run_until_complete(engine.generate(chat()))
    assert loop.run_until_complete(engine.generate(chat())).text == first.text
    cut = loop.run_until_complete(engine.generate(chat(stop=["FROM", "from"])))
    assert "from" not in cut.text.lower() and cut.finish_reason == "stop"


def test_streaming_gives_the_same_text(engine: VllmEngine, loop: asyncio.AbstractEventLoop) -> None:
    async def collect():
        return [chunk async for chunk in engine.stream(chat())]

    chunks = loop.run_until_complete(collect())
    assert "".join(c.text for c in chunks) == loop.run_until_complete(engine.generate(chat())).text
    assert chunks[-1].completion_tokens and chunks[-1].prompt_tokens


def test_schema_bound_decoding(engine: VllmEngine, loop: asyncio.AbstractEventLoop) -> None:
    grammar = build_sql_grammar(SCHEMA, dialect="sqlite")
    output = loop.run_until_complete(engine.generate(chat(max_tokens=200, grammar=grammar)))
    # The engine's own check passed (else EngineError); the SQL is the schema's and parses.
    sqlglot.parse_one(output.text, read="sqlite")
    assert "Album" in output.text and "```" not in output.text


def test_a_cancelled_request_leaves_vllm(engine: VllmEngine, loop: asyncio.AbstractEventLoop) -> None:
    async def cancel_midway():
        task = asyncio.create_task(engine.generate(chat(max_tokens=1000, temperature=1.0, seed=3)))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)

    loop.run_until_complete(cancel_midway())
    assert engine._engine.get_num_unfinished_requests() == 0
    loop.run_until_complete(engine.check_health())


def test_an_unknown_adapter_is_refused(engine: VllmEngine, loop: asyncio.AbstractEventLoop) -> None:
    request = GenerationRequest(messages=QUESTION, sampling=SamplingParams(max_tokens=8), adapter="nope")
    with pytest.raises(EngineError):
        loop.run_until_complete(engine.generate(request))
