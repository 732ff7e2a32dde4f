"""The Transformers backend without weights: its settings, their mapping onto transformers, and how one
request's row decodes, stops and streams. The real model runs in tests/engines/test_transformers_engine.py."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from deployments.builder import ConfigError, parse_app_config
from deployments.engines.registry import engine_builder
from deployments.engines.settings import TransformersSettings
from deployments.engines.transformers_loading import load_kwargs
from deployments.engines.transformers_rows import (
    Row,
    first_stop,
    generation_options,
    group_rows,
    left_pad,
    safe_length,
)
from text2sql.pipeline.engine import SamplingParams

MODEL = {"name": "m", "source": "/models/qwen", "backend": "transformers"}
END = frozenset({0})


def model_config(**fields):
    return parse_app_config({"models": [{**MODEL, **fields}]}).models[0]


def test_backend_transformers_selects_its_settings_with_safe_defaults() -> None:
    settings = model_config().engine
    assert isinstance(settings, TransformersSettings)
    assert settings.torch_dtype == "auto" and settings.device_map is None
    assert settings.trust_remote_code is False and not settings.load_in_4bit and not settings.load_in_8bit


@pytest.mark.parametrize(
    ("engine", "needle"),
    [
        ({"load_in_4bit": True, "load_in_8bit": True}, "choose one"),
        ({"torch_dtype": "float64"}, "torch_dtype"),
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"batch_wait_timeout_s": -1}, "batch_wait_timeout_s"),
        ({"n_ctx": 2048}, "n_ctx"),  # a llama.cpp setting is refused, not ignored
    ],
)
def test_invalid_settings_are_refused(engine: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        model_config(engine=engine)


def test_settings_map_onto_from_pretrained() -> None:
    kwargs = load_kwargs(TransformersSettings(torch_dtype="bf16", device_map="auto", trust_remote_code=True))
    assert kwargs == {"dtype": "bfloat16", "trust_remote_code": True, "device_map": "auto"}
    assert load_kwargs(TransformersSettings()) == {"dtype": "auto", "trust_remote_code": False}


def test_4bit_goes_through_bitsandbytes() -> None:
    pytest.importorskip("transformers")
    config = load_kwargs(TransformersSettings(load_in_4bit=True, torch_dtype="fp16"))["quantization_config"]
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_quant_type == "nf4" and "float16" in str(config.bnb_4bit_compute_dtype)
    assert load_kwargs(TransformersSettings(load_in_8bit=True))["quantization_config"].load_in_8bit


def test_build_declares_batch_size_as_concurrency_and_warns_when_replicas_cannot_fill_it(caplog) -> None:
    build = engine_builder("transformers")
    config = model_config(engine={"context_length": 4096, "max_batch_size": 8}, max_ongoing_requests=2)
    with caplog.at_level(logging.WARNING):
        engine = build(config, Path("/models/qwen"))
    capabilities = engine.capabilities  # an override is known before the weights load
    assert capabilities.context_length == 4096 and capabilities.max_concurrent_requests == 8
    assert not capabilities.grammar and capabilities.adapters
    assert "max_ongoing_requests (2) is below engine.max_batch_size (8)" in caplog.text


def test_the_engine_module_imports_without_torch() -> None:
    # The llama.cpp-only server imports the registry and may import any engine module.
    code = "import sys, deployments.engines.transformers; print('torch' in sys.modules, 'transformers' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert found == ["False", "False"]


def test_sampling_groups_batch_greedy_together_and_seeded_alone() -> None:
    def row(**sampling) -> Row:
        return Row(prompt_ids=[1], sampling=SamplingParams(max_tokens=5, **sampling))

    greedy_a, greedy_b = row(), row(seed=3)  # a seed changes nothing when decoding greedily
    warm_a, warm_b, hot = row(temperature=0.7), row(temperature=0.7), row(temperature=1.0)
    seeded_a, seeded_b = row(temperature=0.7, seed=1), row(temperature=0.7, seed=1)
    groups = group_rows([greedy_a, warm_a, seeded_a, greedy_b, hot, warm_b, seeded_b])
    assert groups == [[greedy_a, greedy_b], [warm_a, warm_b], [seeded_a], [hot], [seeded_b]]


def test_generation_options_never_leave_room_for_model_defaults() -> None:
    greedy = Row(prompt_ids=[1], sampling=SamplingParams(max_tokens=5))
    longer = Row(prompt_ids=[1], sampling=SamplingParams(max_tokens=9))
    assert generation_options([greedy, longer]) == {
        "max_new_tokens": 9, "do_sample": False, "repetition_penalty": 1.0, "num_beams": 1,
    }
    sampled = Row(prompt_ids=[1], sampling=SamplingParams(max_tokens=5, temperature=0.5, top_p=0.9))
    options = generation_options([sampled])
    assert options["do_sample"] and options["temperature"] == 0.5 and options["top_p"] == 0.9
    assert options["top_k"] == 0


def test_left_padding() -> None:
    assert left_pad([[5, 6, 7], [8]], 0) == ([[5, 6, 7], [0, 0, 8]], [[1, 1, 1], [0, 0, 1]])


def test_stop_strings_are_found_and_held_back_while_they_may_still_come() -> None:
    assert first_stop("SELECT 1;\nSELECT 2;", [";", "\n"]) == 8
    assert first_stop("SELECT 1", [";"]) is None
    assert safe_length("SELECT 1\n`", ["\n```"]) == len("SELECT 1")
    assert safe_length("SELECT 1", ["\n```"]) == len("SELECT 1")
    assert safe_length("caf\ufffd", []) == 3  # half a character is not shown yet


class Tokens:
    """A stand-in tokenizer: token i decodes to WORDS[i]."""

    WORDS = ["<end>", "SELECT", " name", " FROM", " t", ";", "\n", "``", "`", " extra"]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.WORDS[i] for i in ids)

    def ids(self, *words: str) -> list[int]:
        return [self.WORDS.index(w) for w in words]


def feed(row: Row, tokens: list[int]) -> list[bool]:
    return [row.advance(token, end_ids=END, decode=Tokens().decode) for token in tokens]


def test_a_row_cuts_its_text_at_the_first_stop_string_and_streams_only_safe_text() -> None:
    pieces: list[str] = []
    row = Row(prompt_ids=[1, 2], sampling=SamplingParams(max_tokens=20, stop=["\n```"]), on_text=pieces.append)
    done = feed(row, Tokens().ids("SELECT", " name", "\n", "``", "`", " extra"))
    assert done == [False, False, False, False, True, True]
    assert row.text == "SELECT name" and row.finish_reason == "stop"
    assert "".join(pieces) == "SELECT name" and pieces[0] == "SELECT"
    output = row.output()
    assert output.prompt_tokens == 2 and output.completion_tokens == 5


def test_a_row_stops_at_its_own_max_tokens_and_at_an_end_token() -> None:
    capped = Row(prompt_ids=[1], sampling=SamplingParams(max_tokens=2))
    assert feed(capped, Tokens().ids("SELECT", " name", " FROM")) == [False, True, True]
    assert capped.text == "SELECT name" and capped.finish_reason == "length"
    ended = Row(prompt_ids=[1], sampling=SamplingParams(max_tokens=9))
    assert feed(ended, Tokens().ids("SELECT", "<end>")) == [False, True]
    assert ended.text == "SELECT" and ended.finish_reason == "stop" and ended.output().completion_tokens == 1


def test_a_stopped_row_ends_at_its_next_token_and_a_late_one_times_out() -> None:
    row = Row(prompt_ids=[1], sampling=SamplingParams(max_tokens=9))
    feed(row, Tokens().ids("SELECT"))
    row.request_stop()
    assert feed(row, Tokens().ids(" name")) == [True]
    assert row.text == "SELECT" and row.finish_reason == "stop" and not row.timed_out
    late = Row(prompt_ids=[1], sampling=SamplingParams(max_tokens=9))
    late.start_clock(0.0)
    assert feed(late, Tokens().ids("SELECT")) == [True] and late.timed_out


def test_a_row_generate_never_finished_is_closed_as_cut_off() -> None:
    row = Row(prompt_ids=[1], sampling=SamplingParams(max_tokens=9))
    feed(row, Tokens().ids("SELECT"))
    row.close()
    assert row.finish_reason == "length"


def test_openai_penalties_apply_per_row_to_generated_tokens_only() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from deployments.engines.transformers_rows import penalties_processor

    plain = Row(prompt_ids=[1], sampling=SamplingParams(max_tokens=5))
    assert penalties_processor([plain], prompt_width=1) is None
    penalised = Row(prompt_ids=[1], sampling=SamplingParams(max_tokens=5, presence_penalty=0.5, frequency_penalty=1.0))
    processor = penalties_processor([plain, penalised], prompt_width=1)
    # Prompt token 3 is not penalised; generated tokens 2, 2 and 0 are, in the second row only.
    input_ids = torch.tensor([[3, 2, 2, 0], [3, 2, 2, 0]])
    scores = processor(input_ids, torch.zeros(2, 4))
    assert scores[0].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert scores[1].tolist() == [-1.5, 0.0, -2.5, 0.0]
