"""`ray job submit --working-dir . -- python -m training.train ...` against a Ray head this test starts (on free
ports: Redis holds 6379 on these machines), while the Serve app on that same cluster keeps answering SQL
questions. The job trains the tiny model built here and must end SUCCEEDED with its adapter written."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

pytest.importorskip("trl")
pytest.importorskip("ray.train")

from cluster.local_nodes import BIN, start_head, stop_nodes  # noqa: E402
from deployments.builder import build_app  # noqa: E402
from tests.conftest import EMBEDDED_DEFAULT, free_port, wait_until_healthy  # noqa: E402
from tests.training.tiny_model import build_tiny_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DDL = "CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT, age INTEGER);"
PAIRS = [("How many pets are there?", "SELECT COUNT(*) FROM pets"), ("List the pet names.", "SELECT name FROM pets"),
         ("How old is the oldest pet?", "SELECT MAX(age) FROM pets"), ("Which pets are over 3?", "SELECT name FROM pets WHERE age > 3")]


@pytest.fixture(scope="module")
def head(ray_temp_dir):
    """A Ray head with a dashboard (the job server), started as a user would with `ray start --head`."""
    nodes = start_head(ray_temp_dir)
    try:
        yield {"address": nodes.address, "dashboard": nodes.dashboard, "env": nodes.env}
    finally:
        import ray

        ray.shutdown()
        stop_nodes(nodes)


def serve_on(head: dict, embedded_model_path: Path) -> str:
    import ray
    from ray import serve

    ray.init(address=head["address"], namespace="serve-under-training")
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    args = {
        "ingress": {"num_cpus": 0},
        "models": [{"name": EMBEDDED_DEFAULT, "source": str(embedded_model_path), "engine": {"n_ctx": 1024, "n_threads": 1},
                    "generation": {"max_tokens": 32}, "ray_actor_options": {"num_cpus": 0.5}}],
    }
    serve.run(build_app(args), name="text2sql", route_prefix="/", blocking=False)
    base_url = f"http://127.0.0.1:{port}"
    wait_until_healthy(base_url)
    return base_url


def submit_when_the_agent_is_up(command: list[str], env: dict, *, timeout_s: float = 180) -> subprocess.CompletedProcess:
    """A fresh head's job agent registers a little after `ray start` returns: until then the submission is
    refused with "No available agent", which means not ready yet, not failed."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if "No available agent" not in job.stderr + job.stdout or time.monotonic() > deadline:
            return job
        time.sleep(3)


def test_a_submitted_job_trains_while_serve_keeps_answering(head, embedded_model_path, tmp_path):
    base_url = serve_on(head, embedded_model_path)
    data = tmp_path / "pets.jsonl"
    data.write_text("".join(json.dumps({"question": q, "schema": DDL, "sql": s}) + "\n" for q, s in PAIRS))
    build_tiny_model(tmp_path / "tiny", [DDL, *(q + " " + s for q, s in PAIRS)] * 4)
    config = {
        "name": "submitted", "base_model": str(tmp_path / "tiny"), "data": {"train": str(data)},
        "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "optim": {"max_steps": 6, "per_device_batch_size": 2, "gradient_accumulation_steps": 1, "max_length": 1024},
        "scaling": {"num_workers": 1, "resources_per_worker": {"CPU": 1}},
        "storage_path": str(tmp_path / "runs"), "output_dir": str(tmp_path / "adapters"),
        "log_every_steps": 2, "checkpoint_every_steps": 3,
    }
    config_path = tmp_path / "job.yaml"
    config_path.write_text(yaml.safe_dump(config))

    answers: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            body = {"question": "How many pets are there?", "schema": DDL}
            answers.append(requests.post(f"{base_url}/v1/sql/generate", json=body, timeout=300).status_code)
            time.sleep(5)  # a user now and then; the replica's core is the job's too

    asker = threading.Thread(target=keep_asking, daemon=True)
    asker.start()
    submit = [
        str(BIN / "ray"), "job", "submit", f"--address={head['dashboard']}", f"--working-dir={REPO}", "--",
        "python", "-m", "training.train", "--config", str(config_path),
    ]
    try:
        job = submit_when_the_agent_is_up(submit, head["env"])
    finally:
        stop.set()
        asker.join(timeout=300)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert "succeeded" in job.stdout, job.stdout[-3000:]
    assert "step 6/6" in job.stdout and "adapter" in job.stdout  # the job's own progress, through `ray job logs`
    assert (tmp_path / "adapters" / "submitted" / "adapter_model.safetensors").is_file()
    assert len(answers) >= 2 and set(answers) == {200}, answers
