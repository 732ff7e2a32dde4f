"""The Text-to-SQL metrics on Ray's own Prometheus endpoint, with the real 0.5B on llama.cpp.

Known requests go through the app; then Ray's metrics agent is scraped (the node's metrics export port, where
Serve's own metrics are too) until each counter has moved by exactly what the requests' own answers say.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from deployments.builder import build_app
from deployments.telemetry import sql_outcomes
from tests.conftest import EMBEDDED_DEFAULT, free_port, wait_until_healthy
from text2sql.pipeline.answer import SqlAnswer

MODEL = EMBEDDED_DEFAULT
QUESTIONS = ["How many employees are there?", "List the names of the employees in Sales."]


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedded_model_path) -> tuple[str, str]:
    """(app url, metrics url): a Ray of its own, exporting metrics every second on a free port."""
    import ray
    from ray import serve

    database = tmp_path_factory.mktemp("metrics") / "staff.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department TEXT)")
        connection.executemany(
            "INSERT INTO employees VALUES (?, ?, ?)", [(1, "Ada", "Sales"), (2, "Bob", "Sales"), (3, "Cy", "Ops")]
        )
    connection.close()
    metrics_port = free_port()
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="text2sql-metrics-tests",
        _metrics_export_port=metrics_port, _system_config={"metrics_report_interval_ms": 1000},
    )
    http_port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": http_port})
    args = {
        "ingress": {"warm_up_databases": 0},
        "databases": {"staff": {"url": f"sqlite:///{database}"}},
        "models": [{
            "name": MODEL, "source": str(embedded_model_path), "engine": {"n_ctx": 2048, "n_threads": 1},
            "generation": {"max_tokens": 48}, "ray_actor_options": {"num_cpus": 1},
        }],
    }
    serve.run(build_app(args), name="metrics", route_prefix="/", blocking=False)
    base_url = f"http://127.0.0.1:{http_port}"
    try:
        wait_until_healthy(base_url)
        yield base_url, f"http://127.0.0.1:{metrics_port}/metrics"
    finally:
        serve.shutdown()
        ray.shutdown()


def scrape(metrics_url: str) -> dict[str, dict[tuple, float]]:
    """Samples by name (as Ray exports them, e.g. ray_text2sql_requests_total), keyed by their label items."""
    found: dict[str, dict[tuple, float]] = defaultdict(dict)
    text = requests.get(metrics_url, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "text2sql_" in sample.name:
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k in ("model", "adapter", "status", "outcome", "code")))
                found[sample.name][labels] = found[sample.name].get(labels, 0.0) + sample.value
    return found


def total(samples: dict[str, dict[tuple, float]], suffix: str, **labels: str) -> float:
    """The sum over every exported sample whose name ends with `suffix` and which carries `labels` (a counter's
    `_total` is optional: exporters differ on it)."""
    wanted, bare = set(labels.items()), suffix.removesuffix("_total")
    return sum(
        value for name, series in samples.items() if name.removesuffix("_total").endswith(bare)
        for key, value in series.items() if wanted <= set(key)
    )


def test_each_counter_moves_by_exactly_what_the_requests_did(app):
    base_url, metrics_url = app
    expected_prompt = expected_completion = 0
    # Two plain chat completions and one streamed (with its usage), then two questions run on the database.
    for _ in range(2):
        body = {"model": MODEL, "messages": [{"role": "user", "content": "Write SELECT 1."}], "max_tokens": 8}
        usage = requests.post(f"{base_url}/v1/chat/completions", json=body, timeout=120).json()["usage"]
        expected_prompt += usage["prompt_tokens"]
        expected_completion += usage["completion_tokens"]
    streamed = {
        "model": MODEL, "messages": [{"role": "user", "content": "Write SELECT 2."}], "max_tokens": 8,
        "stream": True, "stream_options": {"include_usage": True},
    }
    with requests.post(f"{base_url}/v1/chat/completions", json=streamed, timeout=120, stream=True) as response:
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("data: {") and '"usage":{' in line.replace(" ", ""):
                usage = json.loads(line.removeprefix("data: "))["usage"]
                expected_prompt += usage["prompt_tokens"]
                expected_completion += usage["completion_tokens"]
    answers = []
    for question in QUESTIONS:
        body = {"model": MODEL, "question": question, "database": "staff", "execute": True}
        reply = requests.post(f"{base_url}/v1/sql/generate", json=body, timeout=300)
        assert reply.status_code == 200, reply.text
        answers.append(SqlAnswer.model_validate({k: v for k, v in reply.json().items() if k in SqlAnswer.model_fields}))
    for answer in answers:
        expected_prompt += answer.usage.prompt_tokens
        expected_completion += answer.usage.completion_tokens
    outcomes: dict[tuple[str, str], int] = defaultdict(int)
    for answer in answers:
        for outcome, code in sql_outcomes(answer):
            outcomes[(outcome, code or "")] += 1
    executed = sum(answer.row_count is not None for answer in answers)
    # A request to an unknown model is refused before any model: no model, nothing counted for ours.
    assert requests.post(f"{base_url}/v1/chat/completions", json={**body, "model": "nope"}, timeout=30).status_code in (400, 404, 422)

    base = {"model": MODEL, "adapter": "base"}
    expectations = {
        ("text2sql_requests_total", (("status", "200"),)): 5,
        ("text2sql_queue_time_seconds_count", ()): 5,
        ("text2sql_request_latency_seconds_count", ()): 5,
        ("text2sql_time_to_first_token_seconds_count", ()): 1,
        ("text2sql_prompt_tokens_total", ()): expected_prompt,
        ("text2sql_completion_tokens_total", ()): expected_completion,
        ("text2sql_rows_returned_count", ()): executed,
        **{("text2sql_sql_outcomes_total", (("outcome", o), ("code", c))): n for (o, c), n in outcomes.items()},
    }
    deadline = time.monotonic() + 90
    while True:
        samples = scrape(metrics_url)
        seen = {key: total(samples, key[0], **base, **dict(key[1])) for key in expectations}
        if seen == expectations or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert seen == expectations, {k: (seen[k], v) for k, v in expectations.items() if seen[k] != v}
    assert total(samples, "text2sql_sql_outcomes_total", **base) == sum(outcomes.values())
    # Serve's own metrics are on the same endpoint.
    assert any(name.startswith("ray_serve_") for name in requests.get(metrics_url, timeout=10).text.split())
