"""LoRA adapters inside the real engines, on the embedded 0.5B: a peft adapter trained in this test session
(`tests/adapter_fixture.py`) through Transformers (peft) and through llama.cpp (converted to a GGUF LoRA).

With the adapter, greedy answers show what it was trained to say, on questions it never saw; without it (or
after unloading it) they are the base model's again. Switching back and forth gives the same answers each time,
so no KV cache computed with the other weights is reused. Bad adapter directories are refused with
AdapterInvalid and leave the engine as it was.

Needs the `[transformers]` extra (torch, peft) and llama-cpp-python; the first run converts the GGUF for
Transformers (about a minute) and trains the adapter (a minute or two).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("llama_cpp")

from safetensors.numpy import load_file, save_file  # noqa: E402

from deployments.engines.llama_cpp import LlamaCppEngine  # noqa: E402
from deployments.engines.settings import TransformersSettings  # noqa: E402
from deployments.engines.transformers import TransformersEngine  # noqa: E402
from tests.adapter_fixture import HELD_OUT_QUESTIONS, chat, marker_adapter  # noqa: E402, F401
from text2sql.pipeline.engine import (  # noqa: E402
    AdapterInvalid,
    AdapterNotLoaded,
    Engine,
    GenerationRequest,
    SamplingParams,
)
from text2sql.prompts import ChatMessage  # noqa: E402

MARKER = "lora_marker"


def run(coroutine):
    return asyncio.run(coroutine)


def ask(question: str, adapter: str | None = None) -> GenerationRequest:
    messages = [ChatMessage(**message) for message in chat(question)]
    return GenerationRequest(messages=messages, sampling=SamplingParams(max_tokens=16), adapter=adapter)


def answer(engine: Engine, question: str, adapter: str | None = None) -> str:
    return run(engine.generate(ask(question, adapter))).text


@pytest.fixture(scope="module")
def transformers_engine(embedded_model_path: Path) -> TransformersEngine:
    engine = TransformersEngine(embedded_model_path, TransformersSettings(), num_threads=1)
    run(engine.start())
    return engine


@pytest.fixture(scope="module")
def llama_cpp_engine(embedded_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> LlamaCppEngine:
    cache = tmp_path_factory.mktemp("gguf-lora-cache")
    engine = LlamaCppEngine(embedded_model_path, n_ctx=1024, n_threads=1, adapter_cache_dir=cache)
    run(engine.start())
    return engine


@pytest.fixture(params=["transformers", "llama_cpp"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    engine: Engine = request.getfixturevalue(f"{request.param}_engine")
    yield engine
    for name in list(engine.adapters):  # each test starts from the base model
        run(engine.unload_adapter(name))


@pytest.fixture(scope="module")
def zeroed_adapter(marker_adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The marker adapter with every B matrix zero: a valid adapter that changes nothing."""
    target = tmp_path_factory.mktemp("zeroed") / "zeroed-adapter"
    shutil.copytree(marker_adapter, target)
    tensors = load_file(str(target / "adapter_model.safetensors"))
    zeroed = {key: np.zeros_like(value) if ".lora_B." in key else value for key, value in tensors.items()}
    save_file(zeroed, str(target / "adapter_model.safetensors"))
    return target


def test_both_engines_declare_adapters(transformers_engine, llama_cpp_engine) -> None:
    assert transformers_engine.capabilities.adapters and llama_cpp_engine.capabilities.adapters


def test_the_adapter_gives_its_trained_answer_and_unloading_restores_the_base(engine: Engine, marker_adapter) -> None:  # noqa: F811
    base = [answer(engine, q) for q in HELD_OUT_QUESTIONS]
    assert not any(MARKER in text for text in base), base
    served = "qwen2.5-coder-0.5b:marker"  # a name as the model server passes it: dots and a colon
    run(engine.load_adapter(served, str(marker_adapter)))
    assert engine.adapters == [served]
    adapted = [answer(engine, q, served) for q in HELD_OUT_QUESTIONS]
    assert all(MARKER in text for text in adapted), adapted
    assert [answer(engine, q) for q in HELD_OUT_QUESTIONS] == base  # loaded, but not asked for
    run(engine.unload_adapter(served))
    assert engine.adapters == [] and [answer(engine, q) for q in HELD_OUT_QUESTIONS] == base
    with pytest.raises(AdapterNotLoaded, match=r"'qwen2.5-coder-0.5b:marker' is not loaded .*\(loaded: none\)"):
        answer(engine, HELD_OUT_QUESTIONS[0], served)
    with pytest.raises(AdapterNotLoaded, match="'qwen2.5-coder-0.5b:marker' is not loaded"):
        run(engine.unload_adapter(served))


def test_switching_back_and_forth_gives_the_same_answers(engine: Engine, marker_adapter, zeroed_adapter) -> None:  # noqa: F811
    question = HELD_OUT_QUESTIONS[0]
    run(engine.load_adapter("marker", str(marker_adapter)))
    run(engine.load_adapter("zeroed", str(zeroed_adapter)))
    # The same prompt every time: a prompt cache computed with the previous weights would be reused whole.
    # The first answer comes from a clean cache (unloading resets it), so a stale one cannot agree with it.
    order = [None, "marker", None, "marker", "zeroed", "marker", None, "zeroed"]
    answers = [(adapter, answer(engine, question, adapter)) for adapter in order]
    by_adapter = {adapter: {text for a, text in answers if a == adapter} for adapter in set(order)}
    assert all(len(texts) == 1 for texts in by_adapter.values()), answers
    assert MARKER in by_adapter["marker"].pop()
    assert by_adapter["zeroed"] == by_adapter[None]  # zero B: the base model's answer


def test_loading_a_name_again_replaces_the_adapter(engine: Engine, marker_adapter, zeroed_adapter) -> None:  # noqa: F811
    question = HELD_OUT_QUESTIONS[1]
    base = answer(engine, question)
    run(engine.load_adapter("sql", str(marker_adapter)))
    assert MARKER in answer(engine, question, "sql")
    run(engine.load_adapter("sql", str(zeroed_adapter)))
    assert engine.adapters == ["sql"] and answer(engine, question, "sql") == base


def test_a_stream_with_an_adapter_matches_its_generation(engine: Engine, marker_adapter) -> None:  # noqa: F811
    run(engine.load_adapter("marker", str(marker_adapter)))
    request = ask(HELD_OUT_QUESTIONS[0], "marker")

    async def collect() -> str:
        return "".join([chunk.text async for chunk in engine.stream(request)])

    assert answer(engine, HELD_OUT_QUESTIONS[0]) != (streamed := run(collect()))
    assert MARKER in streamed and streamed == run(engine.generate(request)).text


def write_foreign_adapter(directory: Path, module: str, fan_in: int, fan_out: int) -> Path:
    directory.mkdir(parents=True)
    rng = np.random.default_rng(0)
    save_file(
        {
            f"base_model.model.{module}.lora_A.weight": rng.standard_normal((8, fan_in)).astype(np.float32),
            f"base_model.model.{module}.lora_B.weight": rng.standard_normal((fan_out, 8)).astype(np.float32),
        },
        str(directory / "adapter_model.safetensors"),
    )
    (directory / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16}))
    return directory


def test_bad_adapter_directories_are_refused_and_change_nothing(engine: Engine, marker_adapter, tmp_path) -> None:  # noqa: F811
    question = HELD_OUT_QUESTIONS[0]
    base = answer(engine, question)
    run(engine.load_adapter("marker", str(marker_adapter)))
    adapted = answer(engine, question, "marker")
    (tmp_path / "empty").mkdir()
    # Llama-3-8B sized layers (4096 wide), and a layer the 0.5B does not have (it has 24 blocks).
    wider = write_foreign_adapter(tmp_path / "llama-8b", "model.layers.0.self_attn.q_proj", 4096, 4096)
    deeper = write_foreign_adapter(tmp_path / "deeper", "model.layers.30.self_attn.q_proj", 896, 896)
    cases = [
        (tmp_path / "empty", "lacks adapter_config.json and adapter_model.safetensors"),
        (tmp_path / "nowhere", "is not a directory"),
        (wider, r"not made for .*q_proj is 4096→4096 in the adapter but 896→896"),
        (deeper, "adapts model.layers.30.self_attn.q_proj, which .* has no linear layer"),
    ]
    for directory, needle in cases:
        with pytest.raises(AdapterInvalid, match=needle):
            run(engine.load_adapter("marker", str(directory)))  # a failed replacement keeps the loaded one
    assert engine.adapters == ["marker"]
    assert answer(engine, question, "marker") == adapted and answer(engine, question) == base


def test_a_batch_runs_base_and_adapter_rows_apart_with_their_own_answers(
    transformers_engine: TransformersEngine, marker_adapter  # noqa: F811
) -> None:
    engine = transformers_engine
    run(engine.load_adapter("marker", str(marker_adapter)))
    try:
        requests = [ask(HELD_OUT_QUESTIONS[0]), ask(HELD_OUT_QUESTIONS[0], "marker"), ask(HELD_OUT_QUESTIONS[1])]
        alone = [run(engine.generate(request)) for request in requests]
        rows = [engine._row(request) for request in requests]
        run(engine._run_batch(rows))  # what serve.batch calls with concurrent requests
        assert [row.output() for row in rows] == alone
        assert MARKER in alone[1].text and MARKER not in alone[0].text + alone[2].text
    finally:
        run(engine.unload_adapter("marker"))


def test_llama_cpp_converts_once_into_its_cache(llama_cpp_engine: LlamaCppEngine, marker_adapter) -> None:  # noqa: F811
    run(llama_cpp_engine.load_adapter("marker", str(marker_adapter)))
    cache = llama_cpp_engine._adapter_cache_dir
    converted = list(cache.glob("lora/marker-adapter-*.gguf"))
    assert len(converted) == 1
    before = {path: path.stat().st_mtime_ns for path in cache.glob("lora/*.gguf")}
    run(llama_cpp_engine.load_adapter("again", str(marker_adapter)))
    assert {path: path.stat().st_mtime_ns for path in cache.glob("lora/*.gguf")} == before  # nothing rewritten
    assert answer(llama_cpp_engine, HELD_OUT_QUESTIONS[0], "again") == answer(llama_cpp_engine, HELD_OUT_QUESTIONS[0], "marker")
    for name in ("marker", "again"):
        run(llama_cpp_engine.unload_adapter(name))
