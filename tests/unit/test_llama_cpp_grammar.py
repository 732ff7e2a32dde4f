"""GrammarGuard, the engine's schema-grammar sampling, on the real embedded model.

Greedy output must be exactly what llama-cpp-python's own full-vocabulary grammar pass gives; the
guard only avoids running the grammar over 152k tokens at every step.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from tests.unit.test_grammar import shop_schema
from text2sql.grammar import cached_sql_grammar
from text2sql.pipeline.engine import GenerationRequest, SamplingParams
from text2sql.prompts import ChatMessage, PromptInput, get_template
from text2sql.schema.render import render_ddl

llama_cpp = pytest.importorskip("llama_cpp")

from deployments.engines.llama_cpp import LlamaCppEngine  # noqa: E402
from deployments.engines.llama_cpp_grammar import GrammarGuard  # noqa: E402

SCHEMA = shop_schema().subset(["Artist", "Album"])
GRAMMAR = cached_sql_grammar(SCHEMA, "sqlite")


@pytest.fixture(scope="module")
def llm():
    from deployments.embedded_models import EmbeddedModelError, ensure_embedded_model

    try:
        path = ensure_embedded_model("qwen2.5-coder-0.5b", progress=False)
    except EmbeddedModelError as e:
        pytest.skip(f"embedded model not available: {e}")
    return llama_cpp.Llama(str(path), n_ctx=2048, n_threads=2, verbose=False)


def messages(question: str) -> list[dict]:
    rendered = get_template("qwen-chat").render(
        PromptInput(question=question, schema_text=render_ddl(SCHEMA), dialect="sqlite")
    )
    return [m.model_dump() for m in rendered.messages or []]


@pytest.mark.parametrize(
    "question",
    [
        "List the 5 artists with the most albums, with their album counts.",
        "How many albums does the artist named AC/DC have?",
    ],
)
def test_greedy_output_is_exactly_the_full_grammar_pass(llm, question: str) -> None:
    full = llm.create_chat_completion(
        messages(question), temperature=0.0, max_tokens=80,
        grammar=llama_cpp.LlamaGrammar.from_string(GRAMMAR, verbose=False),
    )
    guard = GrammarGuard(llm, GRAMMAR)
    guarded = llm.create_chat_completion(
        messages(question), temperature=0.0, max_tokens=80, logits_processor=llama_cpp.LogitsProcessorList([guard])
    )
    guard.close()
    assert guarded["choices"][0]["message"]["content"] == full["choices"][0]["message"]["content"]
    assert guarded["choices"][0]["finish_reason"] == full["choices"][0]["finish_reason"] == "stop"


def test_the_guard_keeps_prose_out(llm) -> None:
    # The model wants to answer in words; every token it prefers is refused, so the full pass runs.
    prose = [{"role": "user", "content": "In two sentences, explain what an album is. Do not write SQL."}]
    guard = GrammarGuard(llm, GRAMMAR)
    out = llm.create_chat_completion(
        prose, temperature=0.0, max_tokens=60, logits_processor=llama_cpp.LogitsProcessorList([guard])
    )
    text = out["choices"][0]["message"]["content"]
    assert guard.full_passes >= 1
    assert text.lstrip().upper().startswith("SELECT"), text


def test_sampling_at_temperature_stays_in_the_grammar(llm) -> None:
    for seed in (1, 2, 3):
        guard = GrammarGuard(llm, GRAMMAR)
        out = llm.create_chat_completion(
            messages("Which albums were made by Queen?"), temperature=0.9, seed=seed, max_tokens=80,
            logits_processor=llama_cpp.LogitsProcessorList([guard]),
        )
        sql = out["choices"][0]["message"]["content"]
        if out["choices"][0]["finish_reason"] == "stop":
            assert isinstance(sqlglot.parse_one(sql, read="sqlite"), exp.Select), sql


def test_an_unparsable_grammar_is_a_value_error(llm) -> None:
    with pytest.raises(ValueError, match="could not parse the grammar"):
        GrammarGuard(llm, 'root ::= "unterminated')


def test_engine_generates_schema_bound_sql_through_the_guard(llm) -> None:
    engine = LlamaCppEngine(Path(llm.model_path), n_ctx=2048, n_threads=2)
    engine._llama = llm  # the module's loaded model; start() would load a second copy
    request = GenerationRequest(
        messages=[ChatMessage(**m) for m in messages("How many albums does the artist named AC/DC have?")],
        sampling=SamplingParams(max_tokens=80, grammar=GRAMMAR),
    )
    output = asyncio.run(engine.generate(request))
    assert output.finish_reason == "stop", output.text
    tree = sqlglot.parse_one(output.text, read="sqlite")
    assert isinstance(tree, exp.Select), output.text
    assert {t.name for t in tree.find_all(exp.Table)} <= {"Artist", "Album"}, output.text
    columns = {c.name for t in SCHEMA.tables for c in t.columns}
    assert {c.name for c in tree.find_all(exp.Column)} <= columns, output.text
