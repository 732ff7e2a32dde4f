"""`serve run serve_config.yaml` as a user runs it: a subprocess that answers /health and requests,
then stops cleanly on SIGINT. It serves both embedded models, so this also covers the 1.5B, and the shipped LoRA
adapter (qwen2.5-coder-0.5b:spider), converted to a GGUF LoRA on its first request."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import yaml

from tests.serve.conftest import free_port, started_serve_run, stop_serve_run, wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = "CREATE TABLE employees (id INT, name TEXT, age INT, salary REAL);"


@pytest.fixture()
def serve_run(tmp_path, embedded_model_path):
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    port = free_port()
    config["http_options"]["port"] = port  # the file as shipped, on a port that is surely free
    config_path = tmp_path / "serve_config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    with started_serve_run(config_path, tmp_path / "serve.log") as process:
        yield process, f"http://127.0.0.1:{port}", tmp_path / "serve.log"


def test_serve_run_answers_and_stops_cleanly(serve_run):
    process, base_url, log_path = serve_run
    try:
        # Both models load and prefill Chinook's schema before /health turns 200; on a busy 2-core machine the
        # 1.5B's prefill on one thread alone has taken minutes.
        wait_until_healthy(base_url, process=process)
    except TimeoutError:
        pytest.fail(f"serve run never became healthy:\n{log_path.read_text()[-4000:]}")
    health = requests.get(f"{base_url}/health", timeout=10).json()
    assert health["models"] == {"qwen2.5-coder-0.5b": "HEALTHY", "qwen2.5-coder-1.5b": "HEALTHY"}

    default = requests.post(
        f"{base_url}/v1/sql/generate",
        json={"question": "How many employees are older than 30?", "schema": SCHEMA},
        timeout=120,
    ).json()
    assert default["model"] == "qwen2.5-coder-1.5b"  # serve_config.yaml's default_model
    assert default["success"] is True
    assert default["sql"].replace("\n", " ") == "SELECT COUNT(*) FROM employees WHERE age > 30"

    named = requests.post(
        f"{base_url}/v1/sql/generate",
        json={"question": "What is the average salary of employees?", "schema": SCHEMA, "model": "qwen2.5-coder-0.5b"},
        timeout=180,
    ).json()
    assert named["model"] == "qwen2.5-coder-0.5b"
    assert named["success"] is True
    assert "avg(salary)" in named["sql"].lower().replace(" ", "")

    models = {m["id"]: m for m in requests.get(f"{base_url}/v1/models", timeout=30).json()["data"]}
    assert models["qwen2.5-coder-0.5b:spider"]["parent"] == "qwen2.5-coder-0.5b"
    adapted = requests.post(
        f"{base_url}/v1/sql/generate",
        json={"question": "How many employees are there?", "schema": SCHEMA, "model": "qwen2.5-coder-0.5b:spider"},
        timeout=180,
    ).json()
    assert adapted["model"] == "qwen2.5-coder-0.5b:spider", adapted
    assert adapted["success"] is True and "count(" in adapted["sql"].lower(), adapted

    stop_serve_run(process, log_path)
