"""Cold start: how long the first question on the bundled Chinook database takes once /health turns 200, with
and without the warm start (ingress.warm_up_databases), on the app serve_config.yaml ships.

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_cold_start [--repeats 2]

Each start is a fresh Ray and app with the model files already cached. The two settings take turns (prefill,
none, prefill, none, ...) because the machine is noisy; the table reports medians and the ratio between them.
Writes bench/results/cold-start.json and the `cold-start` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import time

import requests
import yaml

from bench.paths import REPO_ROOT
from bench.report import publish
from bench.serve_app import start_app, stop_bench_app
from bench.turns import in_turns, medians

logger = logging.getLogger("bench_cold_start")
QUESTIONS = ("How many artists are there?", "How many tracks are longer than five minutes?")
SETTINGS = {"prefill": 1, "none": 0}


def shipped_args() -> dict:
    config = yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text())
    return config["applications"][0]["args"]


def one_start(warm_up_databases: int, port: int) -> dict:
    args = copy.deepcopy(shipped_args())
    args.setdefault("ingress", {})["warm_up_databases"] = warm_up_databases
    started = time.perf_counter()
    try:
        base_url = start_app(args, port=port, name="cold")
        ready_s = time.perf_counter() - started
        latencies = []
        for question in QUESTIONS:
            asked = time.perf_counter()
            body = {"database": "chinook", "question": question, "execute": True}
            response = requests.post(f"{base_url}/v1/sql/generate", json=body, timeout=900)
            response.raise_for_status()
            latencies.append(time.perf_counter() - asked)
        return {"ready_s": ready_s, "first_s": latencies[0], "second_s": latencies[1]}
    finally:
        stop_bench_app()


def render(result: dict) -> str:
    rows = result["summary"]
    lines = [
        f"The app of `serve_config.yaml` (both models, one llama.cpp thread each, Chinook), started {result['repeats']} "
        "times per setting, the settings taking turns; medians. `prefill` is the shipped default "
        "(`ingress.warm_up_databases: 1`): each model prefills Chinook's prompt prefix before /health turns 200, "
        "restoring it from the disk store of prompt prefixes (`engine.prompt_store_mb`) when an earlier start wrote "
        "it, as here; with `none`, the first question restores it from there instead.",
        "",
        "| warm start | until /health 200 | first question | second question |",
        "|---|---|---|---|",
    ]
    for name in SETTINGS:
        row = rows[name]
        lines.append(f"| {name} | {row['ready_s']:.1f} s | {row['first_s']:.2f} s | {row['second_s']:.2f} s |")
    lines.append("")
    lines.append(
        f"First question, prefill against none: {rows['prefill']['first_s'] / rows['none']['first_s']:.2f}x "
        f"(target: at most 10 s after /health turns 200)."
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--port", type=int, default=8797)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    runs = in_turns(SETTINGS, args.repeats, lambda name: one_start(SETTINGS[name], args.port))
    summary = medians(runs)
    result = {"repeats": args.repeats, "runs": runs, "summary": summary, "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    publish("cold-start", result, render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
