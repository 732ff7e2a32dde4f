"""`serve run configs/cpu-mixed.yaml` as a user runs it: one app on 2 CPU cores serving the embedded 0.5B on
llama.cpp (`qwen2.5-coder-0.5b`) and the same GGUF on Transformers (`qwen2.5-coder-0.5b-hf`).

Both names get Chinook questions (the Transformers model one, as its CPU prefill of the 2,300-token schema takes
tens of seconds; its engine has its own tests); each answer's rows must equal the rows of the question's gold SQL
(bench/data/chinook_questions.jsonl) run on the same SQLite file. Each deployment's num_cpus is read back from
the running cluster: `serve status` carries no ray_actor_options, so it comes from the dashboard's REST API
(GET /api/serve/applications/), which reports every deployment's deployment_config as Serve applied it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.serve.conftest import free_port, started_serve_run, stop_serve_run, wait_until_healthy

pytest.importorskip("torch", reason="the Transformers model needs the extra [transformers]")

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "cpu-mixed.yaml"
MODELS = ("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-hf")
# Simple questions of our Chinook set that the 0.5B answers right (bench/results/accuracy/).
QUESTION_IDS = ("chinook-agg-01", "chinook-agg-05", "chinook-agg-07")
# "View the dashboard at http://127.0.0.1:8265": the port this run's own Ray chose.
DASHBOARD = re.compile(r"dashboard at \S*?(\d+\.\d+\.\d+\.\d+:\d+)")


def chinook_questions() -> dict[str, dict]:
    lines = (ROOT / "bench" / "data" / "chinook_questions.jsonl").read_text().splitlines()
    return {q["id"]: q for q in map(json.loads, lines) if q["id"] in QUESTION_IDS}


@pytest.fixture()
def serve_run(tmp_path, embedded_model_path):
    config = yaml.safe_load(CONFIG.read_text())
    port = free_port()
    config["http_options"]["port"] = port  # the file as shipped, on a port that is surely free
    config_path = tmp_path / "cpu-mixed.yaml"
    config_path.write_text(yaml.safe_dump(config))
    with started_serve_run(config_path, tmp_path / "serve.log") as process:
        yield process, f"http://127.0.0.1:{port}", tmp_path / "serve.log"


def dashboard_url(log_path: Path, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = DASHBOARD.search(log_path.read_text())
        if match:
            return f"http://{match.group(1)}"
        time.sleep(0.5)
    pytest.fail(f"serve run never named its dashboard:\n{log_path.read_text()[-4000:]}")


def test_cpu_mixed_serves_both_engines_with_right_rows(serve_run):
    from text2sql.accuracy import execution_match, gold_orders
    from text2sql.chinook import chinook_sqlite_path
    from text2sql.execution import execute_read_only

    process, base_url, log_path = serve_run
    try:
        # The Transformers model dequantizes the GGUF on its first start (cached afterwards).
        wait_until_healthy(base_url, process=process)
    except TimeoutError:
        pytest.fail(f"serve run never became healthy:\n{log_path.read_text()[-4000:]}")
    health = requests.get(f"{base_url}/health", timeout=10).json()
    assert health["models"] == dict.fromkeys(MODELS, "HEALTHY")

    chinook_url = f"sqlite:///{chinook_sqlite_path()}"
    questions = chinook_questions()
    assert sorted(questions) == sorted(QUESTION_IDS)
    for index, question in enumerate(questions.values()):
        gold = execute_read_only(chinook_url, question["sql"])
        for model in MODELS if index == 0 else MODELS[:1]:
            body = requests.post(
                f"{base_url}/v1/sql/generate",
                json={"question": question["question"], "database": "chinook", "execute": True, "model": model},
                timeout=300,
            ).json()
            assert body["model"] == model
            assert body["success"] is True, body
            rows = (body["columns"], body["rows"])
            assert execution_match(
                [gold], rows, order_matters=gold_orders(question["sql"], "sqlite"), ignore_duplicates=False
            ), f"{model} on {question['id']}: {body['sql']} gave {body['rows'][:5]}, gold {gold.rows[:5]}"

    # `serve status` (YAML) knows the deployments but not their resources: both are running, by name.
    status = subprocess.run(
        [str(Path(sys.executable).with_name("serve")), "status", "-a", dashboard_url(log_path)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    deployments = yaml.safe_load(status.stdout)["applications"]["text2sql"]["deployments"]
    for model in MODELS:
        assert deployments[model]["status"] == "HEALTHY"
    # num_cpus from the dashboard's REST API, as Serve applied each deployment's options.
    details = requests.get(f"{dashboard_url(log_path)}/api/serve/applications/", timeout=30).json()
    applied = details["applications"]["text2sql"]["deployments"]
    num_cpus = {name: applied[name]["deployment_config"]["ray_actor_options"]["num_cpus"] for name in MODELS}
    assert num_cpus == {"qwen2.5-coder-0.5b": 1.0, "qwen2.5-coder-0.5b-hf": 1.0}
    shipped = yaml.safe_load(CONFIG.read_text())["applications"][0]["args"]["models"]
    assert num_cpus == {m["name"]: m["ray_actor_options"]["num_cpus"] for m in shipped}

    stop_serve_run(process, log_path)
