"""Several prompt prefixes per llama.cpp model, on the real 0.5B: a question on a schema asked about before, with
another schema in between, reads only its own new tokens, and answers exactly as a model without the cache."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("llama_cpp")

from deployments.engines.llama_cpp import LlamaCppEngine  # noqa: E402
from deployments.engines.llama_cpp_prefixes import PrefixCache  # noqa: E402
from text2sql.pipeline.engine import GenerationRequest, SamplingParams  # noqa: E402
from text2sql.prompts import ChatMessage  # noqa: E402


def schema(prefix: str, tables: int = 14) -> str:
    return "\n".join(
        f"CREATE TABLE {prefix}_{i} (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT, amount REAL, owner_id INTEGER);"
        for i in range(tables)
    )


SCHEMAS = {"shop": schema("shop"), "school": schema("school")}


def request(database: str, question: str) -> GenerationRequest:
    messages = [
        ChatMessage(role="system", content="Write one SQLite query.\n" + SCHEMAS[database]),
        ChatMessage(role="user", content=question),
    ]
    return GenerationRequest(messages=messages, sampling=SamplingParams(max_tokens=24, temperature=0.0))


def engine(model_path, prompt_cache_mb: int) -> LlamaCppEngine:
    built = LlamaCppEngine(model_path, n_ctx=2048, n_threads=2, prompt_cache_mb=prompt_cache_mb)
    asyncio.run(built.start())
    return built


def counting_evaluated_tokens(built: LlamaCppEngine) -> list[int]:
    """Record how many tokens each llama.cpp eval call reads."""
    counts: list[int] = []
    original = built._llama.eval

    def eval_counting(tokens):
        counts.append(len(tokens))
        return original(tokens)

    built._llama.eval = eval_counting
    return counts


def test_an_earlier_schema_is_restored_not_read_again_and_answers_the_same(embedded_model_path):
    cached = engine(embedded_model_path, prompt_cache_mb=256)
    assert isinstance(cached._llama.cache, PrefixCache)
    asyncio.run(cached.generate(request("shop", "How many rows are in shop_1?")))
    asyncio.run(cached.generate(request("school", "List the names in school_2.")))
    asyncio.run(cached.generate(request("shop", "What is the total amount in shop_3?")))  # shop again, in the cache
    counts = counting_evaluated_tokens(cached)
    again = asyncio.run(cached.generate(request("school", "How many rows are in school_4?")))
    read = sum(counts)
    # The school schema (about 380 tokens) comes back from the cache: only the new question is read, and the
    # answer (up to 24 tokens, one eval each).
    assert again.prompt_tokens > 300 and read < again.prompt_tokens * 0.2, (read, again.prompt_tokens)
    # The two questions on the same schema left one entry: the newest superseded the older.
    assert len(cached._llama.cache.cache_state) == 2

    plain = engine(embedded_model_path, prompt_cache_mb=0)
    assert plain._llama.cache is None
    reference = asyncio.run(plain.generate(request("school", "How many rows are in school_4?")))
    assert again.text == reference.text, (again.text, reference.text)


def test_a_new_engine_restores_a_schema_another_read_from_the_disk_store(embedded_model_path, tmp_path):
    """A replica that starts later (scale from zero, a restart) finds the schema's state on disk: it reads only the
    new question, and answers as an engine that read everything."""
    first = LlamaCppEngine(embedded_model_path, n_ctx=2048, n_threads=2, prompt_cache_mb=256, prompt_store_mb=256,
                           prompt_store_root=tmp_path)
    asyncio.run(first.start())
    asyncio.run(first.generate(request("shop", "How many rows are in shop_1?")))
    asyncio.run(first.generate(request("shop", "What is the total amount in shop_3?")))  # the same schema: not rewritten
    store = first._llama.cache.store
    assert len(store) == 1 and store.directory.parent == tmp_path

    later = LlamaCppEngine(embedded_model_path, n_ctx=2048, n_threads=2, prompt_cache_mb=256, prompt_store_mb=256,
                           prompt_store_root=tmp_path)
    asyncio.run(later.start())
    counts = counting_evaluated_tokens(later)
    answer = asyncio.run(later.generate(request("shop", "List the names in shop_2.")))
    assert answer.prompt_tokens > 300 and sum(counts) < answer.prompt_tokens * 0.2, (sum(counts), answer.prompt_tokens)

    plain = engine(embedded_model_path, prompt_cache_mb=0)
    reference = asyncio.run(plain.generate(request("shop", "List the names in shop_2.")))
    assert answer.text == reference.text, (answer.text, reference.text)


def test_another_context_layout_gets_a_store_of_its_own(embedded_model_path, tmp_path):
    from deployments.engines.llama_cpp_prefix_store import store_directory

    small = store_directory(tmp_path, embedded_model_path, n_ctx=2048, n_batch=512)
    assert small == store_directory(tmp_path, embedded_model_path, n_ctx=2048, n_batch=512)
    assert small != store_directory(tmp_path, embedded_model_path, n_ctx=4096, n_batch=512)
    assert small != store_directory(tmp_path, embedded_model_path, n_ctx=2048, n_batch=256)
