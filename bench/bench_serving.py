"""Serving overhead: `/v1/completions` through the Serve stack vs llama-cpp-python in-process.

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_serving            # or: make bench-serving
    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_serving --pairs 40 --throughput-requests 24

Same GGUF (embedded qwen2.5-coder-0.5b), same prompt, same settings (greedy, max_tokens, n_threads).
The machine is noisy, so the two sides take turns (direct, served, direct, served, ...) and the
report uses medians of the pairs. Throughput is requests/s at concurrency 1, 2 and 4, with 1 and 2
replicas. Results go to bench/results/serving.json and the table in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import requests

from bench.paths import RESULTS_DIR
from bench.report import update_benchmarks_section
from bench.serve_app import wait_until_healthy
from deployments.builder import build_app
from deployments.embedded_models import ensure_embedded_model

logger = logging.getLogger("bench_serving")
MODEL = "qwen2.5-coder-0.5b"
PROMPT = (
    "-- SQLite schema\nCREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL, placed_at TEXT);\n"
    "-- Ten useful analytics queries over orders, each on its own line:\n1."
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def model_args(model_path: Path, *, replicas: int, n_threads: int, max_tokens: int) -> dict:
    return {
        "default_model": MODEL,
        "models": [
            {
                "name": MODEL,
                "source": str(model_path),
                "engine": {"n_ctx": 2048, "n_threads": n_threads},
                "generation": {"max_tokens": max_tokens, "temperature": 0.0},
                "ray_actor_options": {"num_cpus": 1},
                "num_replicas": replicas,
                "max_ongoing_requests": 1,
            }
        ],
    }


def deploy(serve, args: dict, base_url: str) -> None:
    serve.run(build_app(args), name="bench", route_prefix="/", blocking=False)
    wait_until_healthy(base_url, timeout_s=300)


def served_completion(base_url: str, max_tokens: int) -> tuple[float, int]:
    started = time.perf_counter()
    response = requests.post(
        f"{base_url}/v1/completions",
        json={"model": MODEL, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0},
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()["usage"]["completion_tokens"]


def direct_completion(llm, max_tokens: int) -> tuple[float, int]:
    started = time.perf_counter()
    result = llm.create_completion(prompt=PROMPT, max_tokens=max_tokens, temperature=0.0)
    return time.perf_counter() - started, result["usage"]["completion_tokens"]


def measure_overhead(llm, base_url: str, *, pairs: int, max_tokens: int) -> dict:
    for _ in range(2):  # warm both sides: first calls pay for page faults and prompt caching
        direct_completion(llm, max_tokens)
        served_completion(base_url, max_tokens)
    direct_tps, served_tps, added_ms = [], [], []
    for index in range(pairs):
        # Alternate which side goes first too, so neither always follows the other.
        order = ("direct", "served") if index % 2 == 0 else ("served", "direct")
        timings = {}
        for side in order:
            timings[side] = direct_completion(llm, max_tokens) if side == "direct" else served_completion(base_url, max_tokens)
        (d_time, d_tokens), (s_time, s_tokens) = timings["direct"], timings["served"]
        direct_tps.append(d_tokens / d_time)
        served_tps.append(s_tokens / s_time)
        # Per-token time difference scaled to the request, so a different token count is not counted as overhead.
        added_ms.append((s_time - d_time * s_tokens / max(1, d_tokens)) * 1000)
    return {
        "pairs": pairs,
        "max_tokens": max_tokens,
        "direct_tokens_per_s_median": statistics.median(direct_tps),
        "served_tokens_per_s_median": statistics.median(served_tps),
        "ratio_median": statistics.median(s / d for s, d in zip(served_tps, direct_tps, strict=True)),
        "added_latency_ms_p50": percentile(added_ms, 50),
        "added_latency_ms_p99": percentile(added_ms, 99),
    }


def measure_throughput(base_url: str, *, concurrency: int, requests_total: int, max_tokens: int) -> float:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda _: served_completion(base_url, max_tokens), range(requests_total)))
    return requests_total / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=24, help="direct/served pairs for the overhead (>= 20)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--n-threads", type=int, default=2, help="llama.cpp threads on both sides")
    parser.add_argument("--throughput-requests", type=int, default=16)
    parser.add_argument("--throughput-max-tokens", type=int, default=32)
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "serving.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")

    import ray
    from llama_cpp import Llama
    from ray import serve

    model_path = ensure_embedded_model(MODEL)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = 8765
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    base_url = f"http://127.0.0.1:{port}"
    results: dict = {
        "model": MODEL,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        # Not sys.argv[0]: under -m that is this file's absolute path.
        "command": " ".join(["python -m bench.bench_serving", *sys.argv[1:]]),
    }
    try:
        logger.info("overhead: %d alternating pairs", args.pairs)
        deploy(serve, model_args(model_path, replicas=1, n_threads=args.n_threads, max_tokens=args.max_tokens), base_url)
        llm = Llama(str(model_path), n_ctx=2048, n_threads=args.n_threads, verbose=False)
        results["overhead"] = measure_overhead(llm, base_url, pairs=args.pairs, max_tokens=args.max_tokens)
        del llm
        logger.info("overhead: %s", results["overhead"])

        throughput = []
        for replicas in (1, 2):
            # One thread per replica: two replicas share the two cores.
            deploy(serve, model_args(model_path, replicas=replicas, n_threads=1, max_tokens=args.throughput_max_tokens), base_url)
            served_completion(base_url, args.throughput_max_tokens)
            for concurrency in (1, 2, 4):
                rps = measure_throughput(
                    base_url, concurrency=concurrency, requests_total=args.throughput_requests,
                    max_tokens=args.throughput_max_tokens,
                )
                throughput.append({"replicas": replicas, "concurrency": concurrency, "requests_per_s": rps})
                logger.info("replicas=%d concurrency=%d: %.2f req/s", replicas, concurrency, rps)
            serve.delete("bench")
        results["throughput"] = throughput
        results["throughput_max_tokens"] = args.throughput_max_tokens
        results["throughput_requests"] = args.throughput_requests
    finally:
        serve.shutdown()
        ray.shutdown()

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    update_benchmarks_section("serving", render_table(results))
    print(render_table(results))
    return 0


def render_table(results: dict) -> str:
    o = results["overhead"]
    lines = [
        f"Command: `{results['command']}` (model `{results['model']}`, {results['machine']['cpus']} CPUs).",
        "",
        f"Overhead: {o['pairs']} alternating pairs, greedy, max_tokens {o['max_tokens']}, medians.",
        "",
        "| metric | in-process llama-cpp-python | through Serve (`/v1/completions`) | target |",
        "|---|---|---|---|",
        f"| tokens/s (median) | {o['direct_tokens_per_s_median']:.1f} | {o['served_tokens_per_s_median']:.1f} | |",
        f"| ratio served/direct (median of pairs) | 1.00 | {o['ratio_median']:.3f} | ≥ 0.95 |",
        f"| added latency p50 | | {o['added_latency_ms_p50']:.1f} ms | ≤ 30 ms |",
        f"| added latency p99 | | {o['added_latency_ms_p99']:.1f} ms | |",
        "",
        f"Throughput (requests/s, 1 llama.cpp thread per replica, max_tokens {results['throughput_max_tokens']}, "
        f"{results['throughput_requests']} requests per cell):",
        "",
        "| replicas | concurrency 1 | concurrency 2 | concurrency 4 |",
        "|---|---|---|---|",
    ]
    for replicas in (1, 2):
        row = {t["concurrency"]: t["requests_per_s"] for t in results["throughput"] if t["replicas"] == replicas}
        lines.append(f"| {replicas} | {row[1]:.2f} | {row[2]:.2f} | {row[4]:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
