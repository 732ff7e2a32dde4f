"""The vLLM engine on CPU, against a fake `vllm` package (tests/fakes_vllm) that records what it is given.

Every engine argument and request mapping, cancellation and time limits (the request is aborted in
vLLM), LoRA requests by adapter name, the grammar sent as a structured-output constraint and checked
afterwards (the fake applies none, like a vLLM that silently drops it), and the error when vllm is not
installed. tests/gpu/test_vllm_engine.py runs the real engine.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from deployments.builder import parse_app_config
from deployments.engines.registry import engine_builder
from deployments.engines.vllm import VllmEngine, build, portable_grammar
from text2sql.grammar import build_sql_grammar
from text2sql.pipeline.engine import (
    AdapterNotSupported,
    EmptyPrompt,
    EngineError,
    GenerationRequest,
    GenerationTimeout,
    PromptTooLong,
    SamplingParams,
)
from text2sql.prompts import ChatMessage
from text2sql.schema.model import Column, DatabaseSchema, Table

FAKE_VLLM = Path(__file__).resolve().parents[1] / "fakes_vllm"
MODEL = {"name": "sqlcoder-8b", "backend": "vllm", "source": "/models/llama-3-sqlcoder-8b"}
SCHEMA = DatabaseSchema(
    name="shop",
    tables=[Table(name="Artist", columns=[Column(name="ArtistId", type="INTEGER"), Column(name="Name", type="TEXT")])],
)


def _forget_vllm() -> None:
    for name in [n for n in sys.modules if n == "vllm" or n.startswith("vllm.")]:
        del sys.modules[name]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    for name in [n for n in sys.modules if n == "vllm" or n.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)  # a real vllm comes back afterwards
    monkeypatch.syspath_prepend(str(FAKE_VLLM))
    import vllm

    assert Path(vllm.__file__).is_relative_to(FAKE_VLLM)
    vllm.started_engines.clear()
    yield vllm
    _forget_vllm()


def engine_for(engine: dict | None = None, *, source: str = MODEL["source"], **model) -> VllmEngine:
    config = parse_app_config({"models": [{**MODEL, "source": source, "engine": engine or {}, **model}]}).models[0]
    return build(config, Path(source))


def started(fake_vllm: ModuleType, engine: VllmEngine, *, replies: list[str] | None = None):
    asyncio.run(engine.start())
    fake = fake_vllm.started_engines[-1]
    if replies is not None:
        fake.replies = replies
    return fake


def prompt_request(prompt: str = "SELECT", **sampling) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, sampling=SamplingParams(**{"max_tokens": 64, **sampling}))


# --------------------------------------------------------------------------------------------------
# Settings -> engine arguments


def test_the_registry_builds_a_vllm_engine_without_vllm_installed() -> None:
    assert engine_builder("vllm") is build


def test_every_setting_reaches_the_engine_arguments(fake_vllm: ModuleType) -> None:
    engine = engine_for(
        {
            "tensor_parallel_size": 2,
            "gpu_memory_utilization": 0.8,
            "max_model_len": 8192,
            "dtype": "bfloat16",
            "enable_lora": True,
            "max_loras": 4,
            "max_lora_rank": 64,
            "enable_prefix_caching": False,
            "max_num_seqs": 32,
        }
    )
    fake = started(fake_vllm, engine)
    assert fake.args.kwargs == {
        "model": "/models/llama-3-sqlcoder-8b",
        "served_model_name": "sqlcoder-8b",
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.8,
        "max_model_len": 8192,
        "dtype": "bfloat16",
        "enable_lora": True,
        "max_loras": 4,
        "max_lora_rank": 64,
        "enable_prefix_caching": False,
        "max_num_seqs": 32,
        # GBNF goes to xgrammar; "auto" could fall back to a backend that reads another syntax.
        "structured_outputs_config": fake_vllm.config.StructuredOutputsConfig(backend="xgrammar"),
    }
    capabilities = engine.capabilities
    assert capabilities.context_length == 8192 and capabilities.grammar and capabilities.adapters
    assert capabilities.max_concurrent_requests == 32


def test_defaults_and_the_context_length_vllm_settles_on(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    with pytest.raises(EngineError, match="not started"):
        engine.capabilities  # noqa: B018 (unknown until vLLM has read the model)
    fake = started(fake_vllm, engine)
    assert {k: fake.args.kwargs[k] for k in ("tensor_parallel_size", "max_model_len", "dtype", "enable_lora")} == {
        "tensor_parallel_size": 1,
        "max_model_len": None,
        "dtype": "auto",
        "enable_lora": False,
    }
    assert fake.args.kwargs["gpu_memory_utilization"] == 0.9 and fake.args.kwargs["enable_prefix_caching"] is True
    assert engine.capabilities.context_length == 4096  # the fake model's own window
    assert not engine.capabilities.adapters and engine.capabilities.max_concurrent_requests == 64


@pytest.mark.parametrize(
    "settings", [{"max_lora_rank": 12}, {"gpu_memory_utilization": 1.5}, {"dtype": "int4"}, {"max_num_seqs": 0}]
)
def test_settings_vllm_would_refuse_are_config_errors(settings: dict) -> None:
    from deployments.builder import ConfigError

    with pytest.raises(ConfigError, match=next(iter(settings))):
        engine_for(settings)


# --------------------------------------------------------------------------------------------------
# Requests -> vLLM


def test_sampling_settings_reach_vllm(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    fake = started(fake_vllm, engine, replies=["SELECT Name FROM Artist"])
    request = prompt_request(
        "Q", max_tokens=100, temperature=0.7, top_p=0.9, stop=[";"], seed=7, presence_penalty=0.5, frequency_penalty=0.25
    )
    asyncio.run(engine.generate(request))
    call = fake.calls[-1]
    assert call.sampling_params.kwargs == {
        "max_tokens": 100,
        "temperature": 0.7,
        "top_p": 0.9,
        "stop": [";"],
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
    }
    assert call.lora_request is None and len(call.request_id) == 32


def test_no_stop_strings_and_greedy_defaults(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    fake = started(fake_vllm, engine)
    asyncio.run(engine.generate(prompt_request()))
    kwargs = fake.calls[-1].sampling_params.kwargs
    assert kwargs["stop"] is None and kwargs["temperature"] == 0.0 and kwargs["seed"] is None
    assert "structured_outputs" not in kwargs


def test_the_output_text_finish_reason_and_token_counts(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    started(fake_vllm, engine, replies=["SELECT 1;\n\nmore"])
    output = asyncio.run(engine.generate(prompt_request("abc", stop=["\n\n"])))
    assert output.text == "SELECT 1;" and output.finish_reason == "stop"
    assert output.prompt_tokens == 4 and output.completion_tokens == len("SELECT 1;")  # BOS + "abc"
    cut = asyncio.run(engine.generate(prompt_request("abc", max_tokens=6)))
    assert cut.text == "SELECT" and cut.finish_reason == "length"


def test_a_raw_prompt_gets_one_bos_and_is_sent_as_tokens(fake_vllm: ModuleType) -> None:
    engine = engine_for()  # the fake gives a "llama" model a BOS (id 1), as Llama 3's tokenizer does
    fake = started(fake_vllm, engine)
    asyncio.run(engine.generate(prompt_request("ab")))
    assert fake.calls[-1].prompt == {"type": "token", "prompt_token_ids": [1, ord("a"), ord("b")]}
    # A template that spells the BOS itself (sqlcoder-llama3) does not get a second one.
    asyncio.run(engine.generate(prompt_request("\x01ab")))
    assert fake.calls[-1].prompt["prompt_token_ids"] == [1, ord("a"), ord("b")]


def test_a_model_without_bos_gets_none(fake_vllm: ModuleType) -> None:
    engine = engine_for(source="/models/XiYanSQL-QwenCoder-7B-2502")
    fake = started(fake_vllm, engine)
    asyncio.run(engine.generate(prompt_request("ab")))
    assert fake.calls[-1].prompt["prompt_token_ids"] == [ord("a"), ord("b")]


def test_chat_messages_go_through_the_chat_template(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    fake = started(fake_vllm, engine)
    messages = [ChatMessage(role="system", content="S"), ChatMessage(role="user", content="Q")]
    asyncio.run(engine.generate(GenerationRequest(messages=messages, sampling=SamplingParams(max_tokens=8))))
    # The template's text, tokenized without special tokens added (the template writes its own).
    assert fake.calls[-1].prompt["prompt_token_ids"] == [ord(c) for c in "<system>S<user>Q<assistant>"]


def test_empty_and_too_long_prompts_are_the_clients_errors(fake_vllm: ModuleType) -> None:
    engine = engine_for({"max_model_len": 16})
    fake = started(fake_vllm, engine)
    with pytest.raises(EmptyPrompt):
        asyncio.run(engine.generate(prompt_request("")))
    with pytest.raises(PromptTooLong, match="16"):
        asyncio.run(engine.generate(prompt_request("x" * 15)))  # 16 tokens with the BOS
    assert fake.calls == []
    # As on llama.cpp, max_tokens is cut to what is left of the window.
    asyncio.run(engine.generate(prompt_request("x" * 10, max_tokens=100)))
    assert fake.calls[-1].sampling_params.kwargs["max_tokens"] == 16 - 11


def test_streaming_yields_the_new_text_then_the_counts(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    started(fake_vllm, engine, replies=["SELECT 1"])

    async def collect():
        return [chunk async for chunk in engine.stream(prompt_request("ab"))]

    chunks = asyncio.run(collect())
    assert "".join(c.text for c in chunks) == "SELECT 1"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].prompt_tokens == 3 and chunks[-1].completion_tokens == len("SELECT 1")
    assert all(c.text for c in chunks[:-2])  # one piece per output, nothing empty on the way


def test_an_aborted_or_failed_request_is_an_engine_error(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    fake = started(fake_vllm, engine)
    fake.finish_reason = "abort"
    with pytest.raises(EngineError, match="abort"):
        asyncio.run(engine.generate(prompt_request()))


# --------------------------------------------------------------------------------------------------
# Cancellation and time limits abort the request in vLLM


def test_a_cancelled_generation_is_aborted_in_vllm(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    fake = started(fake_vllm, engine, replies=["SELECT Name FROM Artist"])
    fake.hang_after = 3

    async def cancel_midway():
        task = asyncio.create_task(engine.generate(prompt_request()))
        while not fake.calls:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_midway())
    assert fake.aborted == [fake.calls[-1].request_id]


def test_a_closed_stream_is_aborted_in_vllm(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    fake = started(fake_vllm, engine, replies=["SELECT Name FROM Artist"])

    async def read_one_piece():
        stream = engine.stream(prompt_request())
        first = await anext(stream)
        await stream.aclose()  # the client went away
        return first

    assert asyncio.run(read_one_piece()).text == "S"
    assert fake.aborted == [fake.calls[-1].request_id]


def test_a_finished_request_is_not_aborted(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    fake = started(fake_vllm, engine)
    asyncio.run(engine.generate(prompt_request()))
    assert fake.aborted == []


@pytest.mark.parametrize("streaming", [False, True])
def test_the_time_limit_stops_and_aborts_the_request(fake_vllm: ModuleType, streaming: bool) -> None:
    engine = engine_for(generation_timeout_s=0.05)
    fake = started(fake_vllm, engine)
    fake.hang_after = 2

    async def run():
        if streaming:
            return [chunk async for chunk in engine.stream(prompt_request())]
        return await engine.generate(prompt_request())

    with pytest.raises(GenerationTimeout, match="generation_timeout_s"):
        asyncio.run(run())
    assert fake.aborted == [fake.calls[-1].request_id]


# --------------------------------------------------------------------------------------------------
# LoRA adapters by name


def test_adapters_are_loaded_and_requested_by_name(fake_vllm: ModuleType) -> None:
    engine = engine_for({"enable_lora": True})
    fake = started(fake_vllm, engine)
    asyncio.run(engine.load_adapter("shop", "/adapters/shop"))
    asyncio.run(engine.load_adapter("hr", "/adapters/hr"))
    assert {lora.lora_name: (lora.lora_int_id, lora.lora_path) for lora in fake.loras.values()} == {
        "shop": (1, "/adapters/shop"),
        "hr": (2, "/adapters/hr"),
    }
    asyncio.run(engine.generate(_with_adapter("hr")))
    assert fake.calls[-1].lora_request == fake.loras[2]
    asyncio.run(engine.generate(prompt_request()))
    assert fake.calls[-1].lora_request is None


def _with_adapter(name: str) -> GenerationRequest:
    return GenerationRequest(prompt="Q", sampling=SamplingParams(max_tokens=8), adapter=name)


def test_reloading_an_adapter_replaces_it_and_unloading_removes_it(fake_vllm: ModuleType) -> None:
    engine = engine_for({"enable_lora": True})
    fake = started(fake_vllm, engine)
    asyncio.run(engine.load_adapter("shop", "/adapters/shop-v1"))
    asyncio.run(engine.load_adapter("shop", "/adapters/shop-v2"))
    assert [(lora.lora_int_id, lora.lora_path) for lora in fake.loras.values()] == [(2, "/adapters/shop-v2")]
    asyncio.run(engine.unload_adapter("shop"))
    assert fake.loras == {}
    with pytest.raises(EngineError, match="no adapter named 'shop'"):
        asyncio.run(engine.generate(_with_adapter("shop")))
    with pytest.raises(EngineError, match="no adapter named 'shop'"):
        asyncio.run(engine.unload_adapter("shop"))


def test_without_enable_lora_adapters_are_not_supported(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    fake = started(fake_vllm, engine)
    with pytest.raises(AdapterNotSupported, match="enable_lora"):
        asyncio.run(engine.load_adapter("shop", "/adapters/shop"))
    with pytest.raises(AdapterNotSupported):
        asyncio.run(engine.generate(_with_adapter("shop")))
    assert fake.loras == {} and fake.calls == []


# --------------------------------------------------------------------------------------------------
# Schema-bound decoding: sent as a structured-output grammar, checked after generation


def grammar_request(**sampling) -> GenerationRequest:
    grammar = build_sql_grammar(SCHEMA, dialect="sqlite")
    return GenerationRequest(prompt="Q", sampling=SamplingParams(**{"max_tokens": 64, "grammar": grammar, **sampling}))


def test_the_grammar_is_sent_as_a_structured_output_constraint(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    fake = started(fake_vllm, engine, replies=["SELECT Name FROM Artist"])
    request = grammar_request()
    assert asyncio.run(engine.generate(request)).text == "SELECT Name FROM Artist"
    constraint = fake.calls[-1].sampling_params.kwargs["structured_outputs"]
    assert constraint == fake_vllm.sampling_params.StructuredOutputsParams(grammar=portable_grammar(request.sampling.grammar))


def test_the_grammar_sent_has_no_hex_escape_xgrammar_misreads() -> None:
    # xgrammar reads "\x5Fa" as U+05FA; llama.cpp as "_" then "a". \u005F is "_" to both.
    # The project's grammars write \u escapes only; portable_grammar still rewrites any other grammar's \x.
    grammar = build_sql_grammar(SCHEMA, dialect="sqlite")
    assert "\\x" not in grammar and "\\u005F" in grammar
    assert portable_grammar(grammar) == grammar
    assert portable_grammar('root ::= "\\\\x41" [\\x41-\\x5A]') == 'root ::= "\\\\x41" [\\u0041-\\u005A]'


@pytest.mark.parametrize(
    "reply",
    [
        "Here is the SQL: SELECT Name FROM Artist",  # what a model writes when nothing constrains it
        "SELECT Name FROM Artists",  # an unknown table
        "SELECT Name FROM Artist; DROP TABLE Artist",
    ],
)
def test_output_outside_the_grammar_fails_closed(fake_vllm: ModuleType, reply: str) -> None:
    engine = engine_for()
    started(fake_vllm, engine, replies=[reply])
    with pytest.raises(EngineError, match="outside the requested grammar"):
        asyncio.run(engine.generate(grammar_request()))


def test_a_stream_outside_the_grammar_ends_in_an_error_without_a_finish(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    started(fake_vllm, engine, replies=["Sure! SELECT Name FROM Artist"])
    chunks = []

    async def collect():
        async for chunk in engine.stream(grammar_request()):
            chunks.append(chunk)

    with pytest.raises(EngineError, match="outside the requested grammar"):
        asyncio.run(collect())
    assert not any(c.finish_reason for c in chunks)


def test_the_model_may_only_end_where_the_grammar_does(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    started(fake_vllm, engine, replies=["SELECT Name FROM Artist WHERE"])
    with pytest.raises(EngineError, match="outside the requested grammar"):
        asyncio.run(engine.generate(grammar_request()))  # an EOS there would not have been allowed


@pytest.mark.parametrize(
    ("sampling", "text", "finish"),
    [
        ({"max_tokens": 20}, "SELECT Name FROM Art", "length"),  # cut inside a table name
        ({"stop": [" WHERE"]}, "SELECT Name FROM Artist", "stop"),  # cut by a stop string
    ],
)
def test_a_cut_output_only_has_to_be_a_prefix(fake_vllm: ModuleType, sampling: dict, text: str, finish: str) -> None:
    engine = engine_for()
    started(fake_vllm, engine, replies=["SELECT Name FROM Artist WHERE ArtistId = 1"])
    output = asyncio.run(engine.generate(grammar_request(**sampling)))
    assert (output.text, output.finish_reason) == (text, finish)


# --------------------------------------------------------------------------------------------------
# Without the extra


def test_without_vllm_start_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "vllm" or n.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    engine = engine_for()
    with pytest.raises(EngineError, match=r"pip install 'text2sql-serve\[vllm\]'"):
        asyncio.run(engine.start())
    with pytest.raises(EngineError, match="not started"):
        asyncio.run(engine.check_health())


def test_health_follows_vllm(fake_vllm: ModuleType) -> None:
    engine = engine_for()
    fake = started(fake_vllm, engine)
    asyncio.run(engine.check_health())
    fake.healthy = False
    with pytest.raises(EngineError, match="unhealthy"):
        asyncio.run(engine.check_health())
