"""End to end through a real Serve app with the real embedded qwen2.5-coder-0.5b on llama.cpp.

Two deployments of the same GGUF under different names and generation settings prove routing.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import requests
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from deployments.builder import build_app

DEFAULT = "qwen2.5-coder-0.5b"
SECOND = "qwen-0.5b-short"

EMPLOYEES_DDL = """CREATE TABLE employees (
  id INTEGER PRIMARY KEY,
  name TEXT,
  department TEXT,
  age INTEGER,
  salary REAL
);"""
EMPLOYEES = [
    (1, "Alice", "Engineering", 34, 120000.0),
    (2, "Bob", "Engineering", 28, 95000.0),
    (3, "Carol", "Sales", 45, 70000.0),
    (4, "Dan", "Sales", 23, 50000.0),
    (5, "Eve", "Marketing", 31, 80000.0),
]


def app_args(model_path: Path) -> dict:
    model = {
        "backend": "llama_cpp",
        "source": str(model_path),
        "engine": {"n_ctx": 2048, "n_threads": 1},
        "ray_actor_options": {"num_cpus": 1},
        "max_ongoing_requests": 1,
        # Room for the 3 concurrent requests below even while an earlier test's cancelled stream still holds
        # the model for its last token; the queue-full 503 has its own test in test_errors.py.
        "max_queued_requests": 8,
    }
    return {
        "default_model": DEFAULT,
        "limits": {"max_question_chars": 500, "max_schema_chars": 5000},
        "models": [
            {**model, "name": DEFAULT, "generation": {"max_tokens": 128}},
            # Same weights, different generation settings: its answers are capped at 3 tokens.
            {**model, "name": SECOND, "generation": {"max_tokens": 3}},
        ],
    }


@pytest.fixture(scope="module")
def base_url(ray_serve, embedded_model_path) -> str:
    return ray_serve(build_app(app_args(embedded_model_path)))


@pytest.fixture()
def employees_db(tmp_path) -> Path:
    path = tmp_path / "employees.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(EMPLOYEES_DDL)
        conn.executemany("INSERT INTO employees VALUES (?, ?, ?, ?, ?)", EMPLOYEES)
    return path


def run_sql(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many employees are older than 30?", [(3,)]),
        ("What is the highest salary?", [(120000.0,)]),
        ("How many employees work in the Sales department?", [(2,)]),
        ("What is the name of the youngest employee?", [("Dan",)]),
    ],
)
def test_generated_sql_returns_expected_rows(base_url, employees_db, question, expected):
    response = requests.post(
        f"{base_url}/v1/sql/generate", json={"question": question, "schema": EMPLOYEES_DDL}, timeout=120
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True, body
    assert body["model"] == DEFAULT
    assert body["dialect"] == "sqlite"
    assert body["usage"]["completion_tokens"] > 0
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    timings = body["timings"]
    assert timings["generate_ms"] > 0 and timings["total_ms"] >= timings["generate_ms"]
    assert run_sql(employees_db, body["sql"]) == expected, body["sql"]


def test_openai_chat_plain_and_streamed(base_url):
    client = OpenAI(base_url=f"{base_url}/v1", api_key="unused")
    messages = [{"role": "user", "content": "Write a SQL query that selects every row of table t."}]
    reply = client.chat.completions.create(model=DEFAULT, messages=messages, max_tokens=40, temperature=0)
    assert reply.model == DEFAULT
    assert "select" in reply.choices[0].message.content.lower()
    assert reply.usage.completion_tokens > 0

    stream = client.chat.completions.create(
        model=DEFAULT,
        messages=messages,
        max_tokens=40,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    streamed = "".join(c.choices[0].delta.content for c in content_chunks)
    # Not compared with the plain reply: llama.cpp reuses the cached prompt prefix, and the
    # different batch shape can flip a near-tie even at temperature 0.
    assert "select" in streamed.lower()
    assert len(content_chunks) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage.completion_tokens == len(content_chunks)
    assert chunks[-1].usage.prompt_tokens == reply.usage.prompt_tokens


def test_openai_completions_plain_and_streamed(base_url):
    client = OpenAI(base_url=f"{base_url}/v1", api_key="unused")
    prompt = "-- SQLite\n-- count the rows of table orders\nSELECT"
    completion = client.completions.create(model=DEFAULT, prompt=prompt, max_tokens=12, temperature=0)
    assert completion.model == DEFAULT
    assert completion.choices[0].text.strip()
    assert completion.usage.completion_tokens <= 12
    tokens_before = generated_tokens(base_url, DEFAULT)
    chunks = list(client.completions.create(model=DEFAULT, prompt=prompt, max_tokens=12, temperature=0, stream=True))
    pieces = [c.choices[0].text for c in chunks if c.choices and c.choices[0].text]
    assert 1 < len(pieces) <= 12
    assert "".join(pieces).strip()
    # Usage was not asked for, so none is sent, yet the stream's tokens still count in the metrics.
    assert all(c.usage is None for c in chunks)
    assert len(pieces) <= generated_tokens(base_url, DEFAULT) - tokens_before <= 12


def generated_tokens(base_url: str, model: str) -> float:
    text = requests.get(f"{base_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "text2sql_completion_tokens":
            return sum(s.value for s in family.samples if s.name.endswith("_total") and s.labels["model"] == model)
    return 0.0


def test_models_list_names_both_deployments(base_url):
    client = OpenAI(base_url=f"{base_url}/v1", api_key="unused")
    assert sorted(m.id for m in client.models.list()) == sorted([DEFAULT, SECOND])


def test_routing_reaches_the_named_deployment(base_url):
    from ray import serve

    def served(name: str) -> int:
        return serve.get_deployment_handle(name, app_name="text2sql").stats.remote().result()["requests_served"]

    before = {name: served(name) for name in (DEFAULT, SECOND)}
    question = {"question": "How many employees are there?", "schema": EMPLOYEES_DDL}
    to_second = [requests.post(f"{base_url}/v1/sql/generate", json={**question, "model": SECOND}, timeout=120) for _ in range(2)]
    to_default = requests.post(f"{base_url}/v1/sql/generate", json=question, timeout=120)

    for response in to_second:
        body = response.json()
        assert body["model"] == SECOND
        # SECOND's max_tokens of 3 shows its own generation settings applied: every attempt is cut short.
        assert body["usage"]["completion_tokens"] <= 3 * len(body["attempts"])
        assert body["success"] is False and "max_tokens (3)" in body["error"]
    assert to_default.json()["model"] == DEFAULT
    assert to_default.json()["usage"]["completion_tokens"] > 3
    after = {name: served(name) for name in (DEFAULT, SECOND)}
    assert after[SECOND] - before[SECOND] == 2
    assert after[DEFAULT] - before[DEFAULT] == 1

    metrics = requests.get(f"{base_url}/metrics", timeout=10).text
    assert f'text2sql_requests_total{{endpoint="/v1/sql/generate",model="{SECOND}",status="200"}}' in metrics


def test_concurrent_requests_queue_instead_of_crashing(base_url):
    """llama.cpp aborts when one model is called from two threads; the replica must serialise."""
    question = {"question": "List the names of all employees.", "schema": EMPLOYEES_DDL}
    results: list[requests.Response] = []

    def ask() -> None:
        results.append(requests.post(f"{base_url}/v1/sql/generate", json=question, timeout=300))

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [200, 200, 200], [r.text for r in results]
    assert all(r.json()["success"] and "employees" in r.json()["sql"].lower() for r in results)
    assert requests.get(f"{base_url}/health", timeout=10).status_code == 200
