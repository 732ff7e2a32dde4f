"""Throughput under concurrency on the 0.5B: one llama.cpp replica taking one request at a time (Serve's router
queues the rest and backs off between them: the old default), one replica taking 4 and queueing them behind its
engine lock (the new default), and two such replicas.

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_concurrency [--requests 16 --repeats 3]

One app holds the three settings as three model deployments of the same GGUF (one llama.cpp thread per replica,
half a CPU each: only the busy ones use a core). Each round measures every cell (setting x concurrency 1, 4, 16)
with the same requests, the order reversed from one round to the next; a cell's requests/s is the median over
rounds, p50/p99 are over all its requests, and a gain is the median of each round's own ratio. Targets: one
replica at concurrency 4 keeps at least 0.95x its concurrency-1 throughput; two replicas at concurrency 4 serve
at least 1.8x one.

Before the app starts, the same requests go to plain llama.cpp, no Ray: one process with one thread, then two
side by side, taking turns over the rounds. Their ratio is what the machine's cores give two llama.cpp decoders
at all, the ceiling for two replicas. Writes bench/results/concurrency.json and the `concurrency` section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import multiprocessing
import statistics
import time

import requests

from bench.bench_serving import percentile
from bench.report import publish
from bench.serve_app import start_app, stop_bench_app
from deployments.embedded_models import ensure_embedded_model

logger = logging.getLogger("bench_concurrency")
MODEL = "qwen2.5-coder-0.5b"
SETTINGS = {  # name: (replicas, max_ongoing_requests)
    "one-slot": (1, 1),
    "queued": (1, 4),
    "two-replicas": (2, 4),
}
LABELS = {
    "one-slot": "1 replica, 1 request at a time in Serve (old default)",
    "queued": "1 replica, 4 queued in the replica (new default)",
    "two-replicas": "2 replicas, 4 queued each",
}
CONCURRENCY = (1, 4, 16)
APP = "concurrency"
# Ray titles a replica's process ray::ServeReplica:<app>:<deployment>.
TWO_REPLICAS_PROCESS = f"ray::ServeReplica:{APP}:two-replicas"
PROMPT = "-- SQLite\nCREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL);\n-- the five largest orders\nSELECT"


def app_args(max_tokens: int) -> dict:
    source = str(ensure_embedded_model(MODEL))
    models = [
        {
            "name": name, "source": source, "engine": {"n_ctx": 1024, "n_threads": 1},
            "generation": {"max_tokens": max_tokens, "temperature": 0}, "num_replicas": replicas,
            "max_ongoing_requests": slots, "max_queued_requests": -1, "ray_actor_options": {"num_cpus": 0.5},
            "routing": {"policy": "power_of_two"},
        }
        for name, (replicas, slots) in SETTINGS.items()
    ]
    return {"models": models, "ingress": {"warm_up_databases": 0, "request_timeout_s": 900}}


def plain_llama_rate(model_path: str, max_tokens: int, seconds: float) -> float:
    """Requests/s of one llama.cpp process (one thread, no Ray) asked the benchmark's request over and over."""
    from llama_cpp import Llama

    llm = Llama(model_path=model_path, n_threads=1, n_ctx=1024, verbose=False)
    llm(PROMPT, max_tokens=max_tokens, temperature=0)  # the prompt is read once, as the replicas' warm-up does
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        llm(PROMPT, max_tokens=max_tokens, temperature=0)
        done += 1
    return done / (time.perf_counter() - started)


def hardware_ceiling(*, repeats: int, max_tokens: int, seconds: float = 20) -> dict:
    """Two plain llama.cpp processes side by side against one, taking turns: their summed requests/s over one's."""
    source = str(ensure_embedded_model(MODEL))
    context = multiprocessing.get_context("spawn")
    ratios, single_rates = [], []
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        for index in range(repeats):
            one = pool.submit(plain_llama_rate, source, max_tokens, seconds).result()
            two = sum(f.result() for f in [pool.submit(plain_llama_rate, source, max_tokens, seconds) for _ in range(2)])
            logger.info("ceiling round %d: one process %.2f req/s, two %.2f req/s", index + 1, one, two)
            ratios.append(two / one)
            single_rates.append(one)
    return {"one_process_requests_per_s": statistics.median(single_rates), "two_vs_one": statistics.median(ratios)}


def one_request(base_url: str, model: str, max_tokens: int) -> float:
    started = time.perf_counter()
    body = {"model": model, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0}
    response = requests.post(f"{base_url}/v1/completions", json=body, timeout=900)
    response.raise_for_status()
    return time.perf_counter() - started


def cell(base_url: str, model: str, concurrency: int, total: int, max_tokens: int) -> tuple[float, list[float]]:
    """(requests/s, latencies) of `total` requests sent `concurrency` at a time."""
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = list(pool.map(lambda _: one_request(base_url, model, max_tokens), range(total)))
    return total / (time.perf_counter() - started), latencies


def process_cpu_seconds() -> dict[int, tuple[str, float]]:
    """Every process's name and CPU seconds so far (Ray names its workers ray::<actor>)."""
    import psutil

    seen = {}
    for process in psutil.process_iter(["cmdline", "name"]):
        try:
            times = process.cpu_times()
            name = (process.info["cmdline"] or [process.info["name"]])[0]
            seen[process.pid] = (name.split("/")[-1].strip(), times.user + times.system)
        except psutil.Error:
            pass
    return seen


def cpu_by_process(base_url: str, *, total: int, max_tokens: int) -> dict:
    """Where the two cores go while two replicas serve at concurrency 4: cores used per process, over one cell."""
    before, started = process_cpu_seconds(), time.perf_counter()
    rate, _ = cell(base_url, "two-replicas", 4, total, max_tokens)
    after, elapsed = process_cpu_seconds(), time.perf_counter() - started
    cores: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        if pid in before and seconds > before[pid][1]:
            label = "model replicas (llama.cpp)" if name == TWO_REPLICAS_PROCESS else name
            cores[label] = cores.get(label, 0.0) + (seconds - before[pid][1]) / elapsed
    return {"requests_per_s": rate, "cores": dict(sorted(cores.items(), key=lambda kv: -kv[1]))}


def run(base_url: str, *, total: int, repeats: int, max_tokens: int) -> dict:
    cells = [(name, c) for name in SETTINGS for c in CONCURRENCY]
    for name in SETTINGS:  # every replica reads the prompt once before anything is timed
        for _ in range(SETTINGS[name][0] * 2):
            one_request(base_url, name, max_tokens)
    rounds: list[dict] = []
    for index in range(repeats):
        measured = {}
        for name, concurrency in cells if index % 2 == 0 else list(reversed(cells)):
            measured[(name, concurrency)] = cell(base_url, name, concurrency, total, max_tokens)
            logger.info("round %d %s c%d: %.2f req/s", index + 1, name, concurrency, measured[(name, concurrency)][0])
        rounds.append(measured)
    summary = {}
    for name, concurrency in cells:
        rates = [r[(name, concurrency)][0] for r in rounds]
        latencies = [s for r in rounds for s in r[(name, concurrency)][1]]
        summary[f"{name}@{concurrency}"] = {
            "requests_per_s": statistics.median(rates),
            "p50_s": percentile(latencies, 50), "p99_s": percentile(latencies, 99),
            "vs_concurrency_1": statistics.median(r[(name, concurrency)][0] / r[(name, 1)][0] for r in rounds),
            "vs_one_replica": statistics.median(r[(name, concurrency)][0] / r[("queued", concurrency)][0] for r in rounds),
        }
    return summary


def render(result: dict) -> str:
    s = result["summary"]
    lines = [
        f"Command: `python -m bench.bench_concurrency --requests {result['requests']} --repeats {result['repeats']}`. "
        f"The embedded 0.5B, `/v1/completions`, max_tokens {result['max_tokens']}, one llama.cpp thread per replica, "
        f"{result['requests']} requests per cell, every cell in each of {result['repeats']} rounds (order reversed "
        "each round); requests/s is the median over rounds, a gain the median of each round's own ratio.",
        "",
        "| setting | concurrency | requests/s | p50 | p99 | vs its concurrency 1 | vs 1 replica (queued) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in SETTINGS:
        for concurrency in CONCURRENCY:
            row = s[f"{name}@{concurrency}"]
            lines.append(
                f"| {LABELS[name]} | {concurrency} | {row['requests_per_s']:.2f} | {row['p50_s']:.2f} s | "
                f"{row['p99_s']:.2f} s | {row['vs_concurrency_1']:.2f}x | {row['vs_one_replica']:.2f}x |"
            )
    lines += [
        "",
        f"Targets: one replica at concurrency 4 keeps >= 0.95x its concurrency-1 throughput (queued: "
        f"{s['queued@4']['vs_concurrency_1']:.2f}x, one slot: {s['one-slot@4']['vs_concurrency_1']:.2f}x); two replicas "
        f"at concurrency 4 serve >= 1.8x one ({s['two-replicas@4']['vs_one_replica']:.2f}x).",
    ]
    if ceiling := result.get("ceiling"):
        lines += [
            "",
            f"What the cores give, same run: plain llama.cpp with no Ray, the same request, one thread per process. "
            f"One process serves {ceiling['one_process_requests_per_s']:.2f} requests/s; two side by side serve "
            f"**{ceiling['two_vs_one']:.2f}x** that (median of {result['repeats']} rounds taking turns), each at "
            f"{ceiling['two_vs_one'] / 2:.0%} of its speed alone. Two replicas reach 1.8x only if each keeps 90% of "
            "its speed alone.",
        ]
    if usage := result.get("cpu_by_process"):
        replicas = usage["cores"].get("model replicas (llama.cpp)", 0.0)
        others = sorted(((n, c) for n, c in usage["cores"].items() if n != "model replicas (llama.cpp)"), key=lambda x: -x[1])
        lines += [
            "",
            f"Where the cores go, two replicas at concurrency 4 ({usage['requests_per_s']:.2f} requests/s), in cores "
            f"used over one more cell: the two replicas {replicas:.2f}, everything else "
            f"{sum(c for _, c in others):.2f}: " + ", ".join(f"{n} {c:.2f}" for n, c in others[:8]) + ".",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--port", type=int, default=8432)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    ceiling = hardware_ceiling(repeats=args.repeats, max_tokens=args.max_tokens)
    base_url = start_app(app_args(args.max_tokens), port=args.port, name=APP)
    try:
        summary = run(base_url, total=args.requests, repeats=args.repeats, max_tokens=args.max_tokens)
        usage = cpu_by_process(base_url, total=args.requests, max_tokens=args.max_tokens)
    finally:
        stop_bench_app()
    result = {
        "requests": args.requests, "repeats": args.repeats, "max_tokens": args.max_tokens, "summary": summary,
        "ceiling": ceiling, "cpu_by_process": usage,
    }  # fmt: skip
    publish("concurrency", result, render(result))


if __name__ == "__main__":
    main()
