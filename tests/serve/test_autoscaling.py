"""Autoscaling for real: the 0.5B on llama.cpp scales out under a burst and back in after it, and a model scaled
to zero answers its first request (and /health calls that state healthy). Replicas that autoscaling adds prefill
the configured database's prompt prefix on their own. Replica counts come from Serve's own status API."""

from __future__ import annotations

import concurrent.futures
import sqlite3
import time

import pytest
import requests
from ray import serve

from deployments.builder import build_app

APP = "autoscaling"
BURSTY, IDLE = "bursty", "sleepy"
DATABASE = "shop"
PROMPT = "-- SQLite\n-- table t(id INTEGER, name TEXT)\n-- every name, sorted\nSELECT"


@pytest.fixture(scope="module")
def base_url(ray_serve, embedded_model_path, tmp_path_factory) -> str:
    database = tmp_path_factory.mktemp("autoscaling") / "shop.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE product (id INTEGER PRIMARY KEY, name TEXT, price REAL)")
    model = {
        "source": str(embedded_model_path), "engine": {"n_ctx": 1024, "n_threads": 1},
        "generation": {"max_tokens": 48, "temperature": 0}, "ray_actor_options": {"num_cpus": 0.5},
    }
    args = {
        "databases": {DATABASE: {"url": f"sqlite:///{database}"}},
        "ingress": {"warm_up_databases": 1},
        "models": [
            {**model, "name": BURSTY, "autoscaling_config": {
                "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1,
                "upscale_delay_s": 1, "downscale_delay_s": 4,
            }},
            {**model, "name": IDLE, "autoscaling_config": {
                "min_replicas": 0, "max_replicas": 1, "initial_replicas": 0, "target_ongoing_requests": 1,
                "upscale_delay_s": 0, "downscale_delay_s": 2,
            }},
        ],
    }
    return ray_serve(build_app(args), name=APP)


def running(model: str) -> int:
    deployment = serve.status().applications[APP].deployments[model]
    return {str(getattr(s, "value", s)): n for s, n in deployment.replica_states.items()}.get("RUNNING", 0)


def wait_for(condition, *, timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(0.5)
    return time.monotonic() - started


def replica_stats(model: str, *, replicas: int, timeout_s: float) -> dict[int, dict]:
    """Each running replica's own stats, by pid, asked until `replicas` different ones have answered."""
    handle = serve.get_deployment_handle(model, APP)
    seen: dict[int, dict] = {}
    deadline = time.monotonic() + timeout_s
    while len(seen) < replicas and time.monotonic() < deadline:
        stats = handle.stats.remote().result(timeout_s=30)
        seen[stats["pid"]] = stats
    return seen


def warmed_everywhere(model: str, replicas: int) -> bool:
    stats = replica_stats(model, replicas=replicas, timeout_s=20)
    return len(stats) == replicas and all(DATABASE in s["warmed"] for s in stats.values())


def complete(base_url: str, model: str, max_tokens: int = 48) -> requests.Response:
    body = {"model": model, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0}
    return requests.post(f"{base_url}/v1/completions", json=body, timeout=600)


def test_a_burst_adds_a_replica_and_it_goes_again_after(base_url):
    assert running(BURSTY) == 1
    stop = time.monotonic() + 240
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        def keep_busy() -> int:
            answered = 0
            while time.monotonic() < stop and running(BURSTY) < 2:
                assert complete(base_url, BURSTY).status_code == 200
                answered += 1
            return answered

        futures = [pool.submit(keep_busy) for _ in range(6)]
        scaled_after = wait_for(lambda: running(BURSTY) == 2, timeout_s=240, what="a second replica under the burst")
        assert sum(f.result() for f in futures) > 0
    # The added replica prefilled the database's prompt prefix itself: the ingress's warm-up reached only the first.
    wait_for(lambda: warmed_everywhere(BURSTY, 2), timeout_s=60, what="both replicas to hold the warm prefix")
    # Idle again: back to min_replicas once downscale_delay_s has passed.
    wait_for(lambda: running(BURSTY) == 1, timeout_s=120, what="the extra replica to go after the burst")
    assert scaled_after < 240
    assert complete(base_url, BURSTY, max_tokens=4).status_code == 200


def test_a_model_scaled_to_zero_is_healthy_and_answers_its_first_request(base_url):
    wait_for(lambda: running(IDLE) == 0, timeout_s=120, what=f"{IDLE} at zero replicas")
    health = requests.get(f"{base_url}/health", timeout=10)
    assert health.status_code == 200, health.text
    wait_for(lambda: IDLE in requests.get(f"{base_url}/health", timeout=10).json().get("scaled_to_zero", []),
             timeout_s=30, what="/health to list the model as scaled to zero")
    started = time.monotonic()
    response = complete(base_url, IDLE, max_tokens=8)
    assert response.status_code == 200, response.text  # queued while a replica starts, not refused
    assert response.json()["choices"][0]["text"].strip()
    assert running(IDLE) == 1 and time.monotonic() - started < 300
    # Never woken by the ingress's warm-up, it warmed itself once it started; and it says where its start went.
    wait_for(lambda: warmed_everywhere(IDLE, 1), timeout_s=60, what="the woken replica to hold the warm prefix")
    (stats,) = replica_stats(IDLE, replicas=1, timeout_s=10).values()
    assert set(stats["startup"]) == {"files_s", "load_s", "start_s"}
    assert 0 < stats["startup"]["load_s"] <= stats["startup"]["start_s"]
    assert stats["warmed"][DATABASE] > 0
