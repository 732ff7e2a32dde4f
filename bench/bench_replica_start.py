"""Starting replicas: how long from starting the app to the first answer with one and with two replicas of the
0.5B, and where a replica woken from zero spends the first question's wait (placing the replica, the model files,
loading the weights, prefilling the database's schema, answering).

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_replica_start [--repeats 2]

Each start is a fresh Ray (two CPUs) and app with the model files already cached, the 0.5B on one llama.cpp thread
and one CPU per replica, asked about the bundled Chinook database with the shipped warm start
(`ingress.warm_up_databases: 1`). The settings take turns (1 replica, 2 replicas, scale to zero with and without
the disk store of prompt prefixes, 1 replica, ...) because the machine is noisy; the table reports medians. Writes bench/results/replica-start.json and
the `replica-start` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import time

import requests
from ray import serve

from bench.report import publish
from bench.serve_app import start_app, stop_bench_app
from bench.turns import in_turns, medians
from deployments.embedded_models import ensure_embedded_model, model_cache_dir

logger = logging.getLogger("bench_replica_start")
MODEL = "qwen2.5-coder-0.5b"
APP = "replica-start"
QUESTIONS = (
    "How many artists are there?",
    "How many tracks are longer than five minutes?",
    "Which customers live in Canada?",
    "What is the total of all invoices?",
)
SETTINGS = ("1 replica, empty disk store", "1 replica", "2 replicas", "scaled to zero", "scaled to zero, no disk store")
ZERO = ("scaled to zero", "scaled to zero, no disk store")


def app_args(setting: str) -> dict:
    model = {
        "name": MODEL, "source": str(ensure_embedded_model(MODEL)), "prompt_template": "qwen-chat",
        "engine": {"n_ctx": 4096, "n_threads": 1}, "generation": {"temperature": 0.0, "max_tokens": 256},
        "ray_actor_options": {"num_cpus": 1}, "max_ongoing_requests": 4,
    }  # fmt: skip
    if setting.endswith("no disk store"):
        model["engine"]["prompt_store_mb"] = 0  # the schema's state kept in RAM only: a new replica reads it again
    if setting in ZERO:
        # Stays up once woken (a long downscale delay), so its stats can be read after the first answer.
        model["autoscaling_config"] = {
            "min_replicas": 0, "initial_replicas": 0, "max_replicas": 1, "target_ongoing_requests": 1,
            "downscale_delay_s": 600,
        }  # fmt: skip
    else:
        model["num_replicas"] = 2 if setting == "2 replicas" else 1
    if setting.endswith("empty disk store"):
        forget_stored_prefixes()
    return {
        "databases": {"chinook": {"url": "builtin:chinook", "max_rows": 1000, "timeout_s": 10}},
        "ingress": {"num_cpus": 0, "warm_up_databases": 1, "request_timeout_s": 900},
        "models": [model],
    }


def forget_stored_prefixes() -> None:
    """Empty the 0.5B's disk store of prompt prefixes, as on a machine where it never ran (a cache: safe to drop)."""
    root = model_cache_dir() / "prefixes"
    for directory in root.glob(f"{ensure_embedded_model(MODEL).stem}-*"):
        shutil.rmtree(directory)


def replica_stats(replicas: int, timeout_s: float = 120) -> list[dict]:
    """Each running replica's stats, asked until `replicas` different ones have answered and hold Chinook's
    prefix (or `timeout_s` passes)."""
    handle = serve.get_deployment_handle(MODEL, APP)
    seen: dict[int, dict] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = handle.stats.remote().result(timeout_s=60)
        seen[stats["pid"]] = stats
        if len(seen) >= replicas and all("chinook" in s["warmed"] for s in seen.values()):
            break
        time.sleep(0.2)
    return list(seen.values())


def ask(base_url: str, question: str) -> float:
    asked = time.perf_counter()
    body = {"database": "chinook", "question": question, "execute": True}
    response = requests.post(f"{base_url}/v1/sql/generate", json=body, timeout=900)
    response.raise_for_status()
    return time.perf_counter() - asked


def one_start(setting: str, port: int) -> dict:
    started = time.perf_counter()
    try:
        base_url = start_app(app_args(setting), port=port, name=APP)
        ready_s = time.perf_counter() - started
        asked_at = time.time()
        latencies = [ask(base_url, question) for question in QUESTIONS]
        run = {
            "ready_s": ready_s,
            "first_answer_s": ready_s + latencies[0],
            "first_s": latencies[0],
            "later_median_s": statistics.median(latencies[1:]),
        }
        replicas = replica_stats(2 if setting == "2 replicas" else 1)
        run["replicas_warm"] = sum("chinook" in s["warmed"] for s in replicas)
        if setting in ZERO:
            (stats,) = replicas
            startup, prefill_s = stats["startup"], stats["warmed"].get("chinook", 0.0) / 1000
            run.update(
                placing_s=stats["started_at"] - asked_at,
                files_s=startup["files_s"],
                load_s=startup["start_s"] - startup["files_s"],  # reading the weights, and the engine's start
                prefill_s=prefill_s,
            )
            run["answering_s"] = latencies[0] - run["placing_s"] - startup["start_s"] - prefill_s
        return run
    finally:
        stop_bench_app()


def render(result: dict) -> str:
    rows = result["summary"]
    lines = [
        f"The 0.5B on one llama.cpp thread and one CPU per replica, Chinook, the shipped warm start; a fresh Ray and "
        f"app per start, the settings taking turns, {result['repeats']} starts each; medians. *Until /health 200* "
        "counts from starting Ray and Serve (what `serve run` does); *empty disk store* is a machine's first start, "
        "where the warm-up reads Chinook's schema; later starts restore it from the disk store. *Later questions* "
        "are the next "
        f"{len(QUESTIONS) - 1} questions. *Replicas warm* counts the replicas holding Chinook's prefix afterwards: the "
        "ingress's warm-up reaches one, every replica warms itself when it starts.",
        "",
        "| setting | until /health 200 | until the first answer | first question | later questions | replicas warm |",
        "|---|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        row = rows[setting]
        lines.append(
            f"| {setting} | {row['ready_s']:.1f} s | {row['first_answer_s']:.1f} s | {row['first_s']:.2f} s | "
            f"{row['later_median_s']:.2f} s | {row['replicas_warm']:.0f} |"
        )
    lines += [
        "",
        "The first question to a model scaled to zero, split (medians of each part, so they need not add up exactly). "
        "With the disk store (`engine.prompt_store_mb`, the default), the woken replica restores Chinook's schema "
        "state that an earlier replica wrote; without it, it reads the schema again:",
        "",
        "| setting | first question | placing the replica | model files | loading the weights | Chinook's schema (prefill or restore) | answering |",
        "|---|---|---|---|---|---|---|",
    ]
    for setting in ZERO:
        zero = rows[setting]
        lines.append(
            f"| {setting} | {zero['first_s']:.2f} s | {zero['placing_s']:.2f} s | {zero['files_s']:.2f} s | "
            f"{zero['load_s']:.2f} s | {zero['prefill_s']:.2f} s | {zero['answering_s']:.2f} s |"
        )
    lines += [
        "",
        "*Model files* is finding the cached GGUF (assembling it from its PyPI parts on a machine that never did); "
        "*placing* is from the question's arrival until Serve started the replica's actor.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--port", type=int, default=8796)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    runs = in_turns(SETTINGS, args.repeats, lambda setting: one_start(setting, args.port))
    summary = medians(runs)
    result = {"repeats": args.repeats, "runs": runs, "summary": summary, "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    publish("replica-start", result, render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
