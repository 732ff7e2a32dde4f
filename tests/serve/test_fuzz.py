"""Fuzz every operation of the app's own /openapi.json with schemathesis: no answer may be a 5xx.

The app is the real one, with the real 0.5B and a small SQLite database, so generated requests reach
the model, the SQL pipeline and the database routes. Each request is kept cheap (a low
max_tokens_limit, short size limits, a small context), and each operation gets a bounded number of
examples and a time budget, so the whole run takes a few minutes on 2 cores. Afterwards the app
must still answer a normal question correctly.
"""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance

from deployments.builder import build_app
from deployments.ingress import app

MODEL = "qwen2.5-coder-0.5b"
MAX_EXAMPLES = 200
# Per operation, so a busy machine still finishes in minutes: a request can cost several model calls.
BUDGET_S = 25.0
SHOP_DDL = [
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT)",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total REAL)",
]


@pytest.fixture(scope="module")
def base_url(ray_serve, embedded_model_path, tmp_path_factory) -> str:
    shop = tmp_path_factory.mktemp("fuzz") / "shop.sqlite"
    with sqlite3.connect(shop) as conn:
        for ddl in SHOP_DDL:
            conn.execute(ddl)
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?)", [(1, "Ada", "UK"), (2, "Bo", "SE")])
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(1, 1, 9.5), (2, 1, 3.0), (3, 2, 7.25)])
    args = {
        "models": [
            {
                "name": MODEL,
                "source": str(embedded_model_path),
                "engine": {"n_ctx": 1024, "n_threads": 1},
                "generation": {"max_tokens": 8},
                "max_tokens_limit": 32,
                "generation_timeout_s": 20,
                "ray_actor_options": {"num_cpus": 1},
            }
        ],
        "databases": {"shop": {"url": f"sqlite:///{shop}", "description": "A tiny shop."}},
        "pipeline": {"max_candidates": 2},
        "limits": {
            "max_question_chars": 200,
            "max_schema_chars": 2000,
            "max_evidence_chars": 200,
            "max_history_chars": 1000,
            "max_prompt_chars": 300,
            "max_request_bytes": 20_000,
        },
        "ingress": {"request_timeout_s": 60},
    }
    return ray_serve(build_app(args), name="fuzz")


# The schema is the app's own, built in-process at collection so pytest can list one test per
# operation (schemathesis's lazy fixture loader does not work with pytest 9.2); the first test
# checks that the served /openapi.json has exactly these operations.
schema = schemathesis.openapi.from_dict(
    app.openapi(),
    config=SchemathesisConfig.from_dict(
        {
            "seed": 13,
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
            # Half the time, names that exist, so the database routes and the model are reached too.
            "dictionaries": {"databases": {"values": ["shop"]}, "models": {"values": [MODEL]}},
            "parameters": {
                "path.name": {"dictionary": "databases", "probability": 0.5},
                "body.database": {"dictionary": "databases", "probability": 0.5},
                "body.model": {"dictionary": "models", "probability": 0.5},
            },
        }
    ),
)
_started: dict[str, float] = {}


def test_the_fuzzed_schema_is_the_served_one(base_url):
    served = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    assert served["paths"] == app.openapi()["paths"]


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_operation_answers_with_a_server_error(case, base_url):
    started = _started.setdefault(case.operation.label, time.monotonic())
    if time.monotonic() - started > BUDGET_S:
        return  # this operation's time is up; its remaining examples are not sent
    response = case.call(base_url=base_url, timeout=90)
    checks = [not_a_server_error]
    if 200 <= response.status_code < 300:
        # Only successes: error bodies are OpenAI-shaped on purpose, not FastAPI's documented 422 shape.
        checks.append(response_schema_conformance)
    case.validate_response(response, checks=checks)


def test_the_app_answers_normally_after_fuzzing(base_url):
    response = httpx.post(
        f"{base_url}/v1/sql/generate",
        json={"question": "How many customers are there?", "database": "shop", "execute": True, "max_tokens": 32},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True and body["rows"] == [[2]], body
    assert httpx.get(f"{base_url}/health", timeout=30).status_code == 200
