"""`backend: transformers` served by Ray Serve: the embedded 0.5B GGUF on Transformers answers SQL on a SQLite
database, streams through the OpenAI API with a stop string, and batches concurrent requests on one replica.

Two deployments of the same weights: "qwen-hf" is built from its config like any served model; "qwen-hf-probe"
gets an engine that also writes each batch's size to a file, which is how the test sees serve.batch at work.
Needs the `[transformers]` extra (skipped without it).
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

pytest.importorskip("torch")
pytest.importorskip("transformers")

from openai import OpenAI  # noqa: E402

from deployments.builder import build_app_with_engines  # noqa: E402
from deployments.engines.settings import TransformersSettings  # noqa: E402
from deployments.engines.transformers import TransformersEngine  # noqa: E402

MODEL = "qwen-hf"
PROBE = "qwen-hf-probe"
BATCH = 4
DDL = "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department TEXT, age INTEGER);"
EMPLOYEES = [(1, "Alice", "Engineering", 34), (2, "Bob", "Engineering", 28), (3, "Carol", "Sales", 45)]


class BatchLoggingEngine(TransformersEngine):
    """The real engine; each batch's size also goes to a file the test reads (the replica is another process)."""

    def __init__(self, *args, log_path: Path, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.log_path = log_path

    async def _run_batch(self, rows):
        with open(self.log_path, "a") as log:
            log.write(f"{len(rows)}\n")
        return await super()._run_batch(rows)


@pytest.fixture(scope="module")
def batch_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("batches") / "sizes.txt"


@pytest.fixture(scope="module")
def base_url(ray_serve, embedded_model_path, batch_log, tmp_path_factory) -> str:
    database = tmp_path_factory.mktemp("db") / "staff.sqlite"
    with sqlite3.connect(database) as conn:
        conn.execute(DDL)
        conn.executemany("INSERT INTO employees VALUES (?, ?, ?, ?)", EMPLOYEES)
    engine = {"max_batch_size": BATCH, "batch_wait_timeout_s": 0.5, "num_threads": 1}
    model = {
        "backend": "transformers",
        "source": str(embedded_model_path),
        "engine": engine,
        "ray_actor_options": {"num_cpus": 1},
        "max_ongoing_requests": BATCH,
        "generation": {"max_tokens": 48},
    }
    args = {
        "default_model": MODEL,
        # No prefill at start: its one-row batch on the probe would mix with the batches this module counts.
        "ingress": {"warm_up_databases": 0},
        "databases": {"staff": {"url": f"sqlite:///{database}"}},
        "models": [{**model, "name": MODEL}, {**model, "name": PROBE}],
    }
    probe = BatchLoggingEngine(
        embedded_model_path, TransformersSettings(**engine), num_threads=1, generation_timeout_s=120, log_path=batch_log
    )
    return ray_serve(build_app_with_engines(args, engines={PROBE: probe}))


def test_sql_question_is_answered_and_run_on_the_database(base_url: str) -> None:
    response = requests.post(
        f"{base_url}/v1/sql/generate",
        json={"question": "How many employees work in Engineering?", "database": "staff", "execute": True},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["model"] == MODEL, body
    assert body["rows"] == [[2]], body["sql"]


def test_openai_chat_streams_and_honours_a_stop_string(base_url: str) -> None:
    client = OpenAI(base_url=f"{base_url}/v1", api_key="unused")
    messages = [{"role": "user", "content": "Count from 1 to 20 in words, separated by commas."}]
    plain = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=12, temperature=0)
    text = plain.choices[0].message.content
    stop = ", " + text.split(", ")[2]
    stream = client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=12, temperature=0, stop=[stop],
        stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1 and "".join(pieces) == text[: text.index(stop)]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert 0 < chunks[-1].usage.completion_tokens < plain.usage.completion_tokens


def test_concurrent_requests_share_one_generate_call(base_url: str, batch_log: Path) -> None:
    client = OpenAI(base_url=f"{base_url}/v1", api_key="unused")
    prompts = [f"SELECT name FROM employees WHERE age > {age}" for age in (20, 30, 40, 50)]

    def complete(prompt: str) -> str:
        reply = client.completions.create(model=PROBE, prompt=prompt, max_tokens=6, temperature=0)
        return reply.choices[0].text

    logged_earlier = len(batch_log.read_text().split()) if batch_log.exists() else 0
    alone = [complete(prompt) for prompt in prompts]
    sizes_before = [int(s) for s in batch_log.read_text().split()[logged_earlier:]]
    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        together = list(pool.map(complete, prompts))
    sizes = [int(s) for s in batch_log.read_text().split()[logged_earlier + len(sizes_before) :]]
    assert sizes_before == [1] * len(prompts)  # one at a time: each its own generate call
    assert sum(sizes) >= len(prompts) and max(sizes) >= 2, sizes  # together: rows share one call
    assert together == alone  # left-padded rows give the answers each request gets alone
