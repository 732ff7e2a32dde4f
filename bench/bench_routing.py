"""Prefix-cache-aware routing against Serve's default router, two replicas of the 0.5B each.

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_routing [--rounds 4]

One app serves the embedded 0.5B twice: `r-prefix` routes with the project's prefix-affinity router and
`r-pow2` with Serve's default (power of two choices), two llama.cpp replicas each (one thread, half a CPU each:
only the busy replica uses a core). Questions on three databases (Chinook and two Spider train databases, only
their schemas matter) come interleaved: round 1 asks each database once, round 2 again, and so on. The two
routers take turns question by question on the same machine state, and nothing is warmed at start, so a
database's first question on a replica pays its schema's prefill.

Reports, per router: the first question on each database, and every later one as a ratio to that first (target:
every later question at most 0.4x). Writes bench/results/routing.json and the `routing` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import requests

from bench.paths import add_dataset_flags, dataset_dir_from_args
from bench.report import publish
from bench.serve_app import start_app, stop_bench_app
from deployments.embedded_models import ensure_embedded_model

logger = logging.getLogger("bench_routing")
MODEL = "qwen2.5-coder-0.5b"
ROUTERS = {"r-prefix": "prefix_affinity", "r-pow2": "power_of_two"}
SPIDER_DATABASES = ("college_2", "hr_1")
TARGET = 0.4
# Questions any schema answers; each round asks the next one.
QUESTIONS = [
    "How many rows does the largest table have?",
    "List the names of all tables' first rows.",
    "What is the most common value in the first table's second column?",
    "Count the rows of the first table.",
    "Show ten rows of the last table.",
    "How many distinct values does the first column of the second table have?",
]


def app_args(spider_dir) -> dict:
    databases = {"chinook": {"url": "builtin:chinook"}}
    for name in SPIDER_DATABASES:
        databases[name] = {"url": f"sqlite:///{spider_dir / 'database' / name / f'{name}.sqlite'}"}
    source = str(ensure_embedded_model(MODEL))
    models = [
        {
            "name": name, "source": source, "engine": {"n_ctx": 4096, "n_threads": 1},
            "generation": {"max_tokens": 96, "temperature": 0}, "num_replicas": 2,
            "ray_actor_options": {"num_cpus": 0.5}, "routing": {"policy": policy},
        }
        for name, policy in ROUTERS.items()
    ]
    return {"databases": databases, "models": models, "ingress": {"warm_up_databases": 0, "request_timeout_s": 900}}


def ask(base_url: str, model: str, database: str, question: str) -> float:
    body = {"model": model, "database": database, "question": question, "max_repairs": 0}
    started = time.perf_counter()
    response = requests.post(f"{base_url}/v1/sql/generate", json=body, timeout=900)
    response.raise_for_status()
    return time.perf_counter() - started


def run(base_url: str, databases: list[str], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Latencies by router and database, in order; the routers take turns, the first one alternating."""
    found = {router: {database: [] for database in databases} for router in ROUTERS}
    turn = 0
    for round_index in range(rounds):
        for database in databases:
            order = list(ROUTERS) if turn % 2 == 0 else list(reversed(ROUTERS))
            turn += 1
            for router in order:
                seconds = ask(base_url, router, database, QUESTIONS[round_index % len(QUESTIONS)])
                found[router][database].append(seconds)
                logger.info("%s %s round %d: %.2f s", router, database, round_index + 1, seconds)
    return found


def summarize(latencies: dict[str, dict[str, list[float]]]) -> dict[str, dict]:
    summary = {}
    for router, by_database in latencies.items():
        ratios = [later / series[0] for series in by_database.values() for later in series[1:]]
        summary[router] = {
            "first_median_s": statistics.median(series[0] for series in by_database.values()),
            "later_median_s": statistics.median(later for series in by_database.values() for later in series[1:]),
            "later_ratio_median": statistics.median(ratios),
            "later_ratio_max": max(ratios),
            "later_within_target": sum(ratio <= TARGET for ratio in ratios),
            "later_count": len(ratios),
        }
    return summary


def render(result: dict) -> str:
    lines = [
        f"Command: `python -m bench.bench_routing --rounds {result['rounds']}`. The embedded 0.5B, two llama.cpp "
        "replicas per router (one thread each), questions on Chinook and two Spider train databases interleaved "
        f"({result['rounds']} rounds of one question per database), the routers taking turns, nothing warmed at "
        "start. A later question's ratio is its latency over its database's first question on that router "
        f"(target: at most {TARGET}x for every one).",
        "",
        "| router | first question (median) | later questions (median) | later / first (median) | later / first (worst) | later within target |",
        "|---|---|---|---|---|---|",
    ]
    labels = {"r-prefix": "prefix affinity (ours)", "r-pow2": "Serve's default (power of two)"}
    for router, row in result["summary"].items():
        lines.append(
            f"| {labels[router]} | {row['first_median_s']:.2f} s | {row['later_median_s']:.2f} s | "
            f"{row['later_ratio_median']:.2f} | {row['later_ratio_max']:.2f} | "
            f"{row['later_within_target']}/{row['later_count']} |"
        )
    lines += ["", "Per database, in order (seconds):", ""]
    for router, by_database in result["latencies"].items():
        for database, series in by_database.items():
            lines.append(f"- {labels[router]}, {database}: " + ", ".join(f"{s:.2f}" for s in series))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--port", type=int, default=8431)
    add_dataset_flags(parser, "spider")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    spider_dir = dataset_dir_from_args(args, "spider")
    # Spider train's databases (their schemas only; nothing of the evaluation half).
    base_url = start_app(app_args(spider_dir / "train"), port=args.port, name="routing")
    try:
        databases = ["chinook", *SPIDER_DATABASES]
        latencies = run(base_url, databases, args.rounds)
    finally:
        stop_bench_app()
    result = {"rounds": args.rounds, "latencies": latencies, "summary": summarize(latencies)}
    publish("routing", result, render(result))


if __name__ == "__main__":
    main()
