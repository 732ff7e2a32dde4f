"""llama.cpp threads per model on the app serve_config.yaml ships: one thread each (as shipped) against two each.

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_threads [--questions 12]

One app holds both settings side by side: each shipped model twice, `<model>-t1` with one llama.cpp thread and
`<model>-t2` with two, everything else as in serve_config.yaml. An idle replica costs no CPU, so the two settings
take turns question by question (1, 2, 2, 1, ...) on the same machine state. Two scenarios over the Chinook
questions (bench/data/chinook_questions.jsonl):

- one user: one question at a time to the default model (and, separately, to the other model);
- two at once: the same question to both models at the same moment, as two users of a small team would.

Each model's first question on a setting is a warm-up (its schema prefix), not measured. Reports medians and the
median of the per-question ratio two-threads / one-thread. Writes bench/results/threads.json and the `threads`
section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import json
import logging
import statistics
import time

import requests

from bench.bench_accuracy import chinook_questions
from bench.bench_cold_start import shipped_args
from bench.paths import RESULTS_DIR
from bench.report import update_benchmarks_section
from bench.serve_app import start_app, stop_bench_app

logger = logging.getLogger("bench_threads")
THREADS = (1, 2)


def setting_name(model: str, threads: int) -> str:
    return f"{model}-t{threads}"


def both_settings_args() -> tuple[dict, list[str]]:
    """The shipped args with every model twice, once per thread count; the shipped model names, default first."""
    args = copy.deepcopy(shipped_args())
    shipped = args["models"]
    models = [m["name"] for m in shipped]
    args["models"] = []
    for threads in THREADS:
        for model in shipped:
            copy_ = copy.deepcopy(model)
            copy_["name"] = setting_name(model["name"], threads)
            copy_["engine"]["n_threads"] = threads
            # Four replicas on two cores: half a logical CPU each so that all fit; only the busy ones use cores.
            copy_["ray_actor_options"]["num_cpus"] = 0.5
            args["models"].append(copy_)
    args["default_model"] = setting_name(args["default_model"], 1)
    args.setdefault("ingress", {})["warm_up_databases"] = 0
    default = shipped_args()["default_model"]
    return args, sorted(models, key=lambda name: name != default)


def ask(base_url: str, model: str, question: str) -> float:
    started = time.perf_counter()
    body = {"database": "chinook", "question": question, "model": model, "execute": True}
    response = requests.post(f"{base_url}/v1/sql/generate", json=body, timeout=900)
    response.raise_for_status()
    return time.perf_counter() - started


def turns(index: int) -> tuple[int, ...]:
    """1, 2 then 2, 1: neither setting always goes first."""
    return THREADS if index % 2 == 0 else THREADS[::-1]


def one_user(base_url: str, model: str, questions: list[str]) -> dict[int, list[float]]:
    seconds: dict[int, list[float]] = {t: [] for t in THREADS}
    for index, question in enumerate(questions):
        for threads in turns(index):
            seconds[threads].append(ask(base_url, setting_name(model, threads), question))
    return seconds


def two_at_once(base_url: str, models: list[str], questions: list[str]) -> dict[int, list[float]]:
    """Per question and setting: the time until both models have answered (each user's wait is at most this)."""
    seconds: dict[int, list[float]] = {t: [] for t in THREADS}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(models)) as pool:
        for index, question in enumerate(questions):
            for threads in turns(index):
                started = time.perf_counter()
                futures = [pool.submit(ask, base_url, setting_name(m, threads), question) for m in models]
                for future in futures:
                    future.result()
                seconds[threads].append(time.perf_counter() - started)
    return seconds


def summary(seconds: dict[int, list[float]]) -> dict:
    one, two = seconds[1], seconds[2]
    return {
        "median_s": {str(t): statistics.median(seconds[t]) for t in THREADS},
        "ratio_2_over_1": statistics.median(b / a for a, b in zip(one, two, strict=True)),
        "seconds": {str(t): seconds[t] for t in THREADS},
    }


def run(questions: int, port: int) -> dict:
    args, models = both_settings_args()
    asked = [q["question"] for q in chinook_questions()[: questions + 1]]
    try:
        base_url = start_app(args, port=port, name="threads")
        for model in models:
            for threads in THREADS:
                ask(base_url, setting_name(model, threads), asked[0])  # warm-up: the schema prefix
        measured = asked[1:]
        scenarios = {f"one user, {model}": summary(one_user(base_url, model, measured)) for model in models}
        scenarios["two at once (one question to each model)"] = summary(two_at_once(base_url, models, measured))
        return {"questions": len(measured), "models": models, "scenarios": scenarios}
    finally:
        stop_bench_app()


def table(result: dict, command: str) -> str:
    lines = [
        f"Command: `{command}`. The app of `serve_config.yaml` with each model at one llama.cpp thread (as shipped) "
        f"and at two, side by side, taking turns; {result['questions']} Chinook questions, `execute: true`, "
        "wall-clock seconds per question (for two at once: until both answers are back).",
        "",
        "| scenario | 1 thread each (median) | 2 threads each (median) | ratio 2/1 (median of pairs) |",
        "|---|---|---|---|",
    ]
    for scenario, row in result["scenarios"].items():
        median = row["median_s"]
        lines.append(f"| {scenario} | {median['1']:.2f} s | {median['2']:.2f} s | {row['ratio_2_over_1']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=12, help="Measured questions per scenario.")
    parser.add_argument("--port", type=int, default=8013)
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    result = run(options.questions, options.port)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "threads.json").write_text(json.dumps(result, indent=2) + "\n")
    command = "python -m bench.bench_threads" + (f" --questions {options.questions}" if options.questions != 12 else "")
    update_benchmarks_section("threads", table(result, command))
    logger.info("%s", json.dumps({k: v["median_s"] for k, v in result["scenarios"].items()}))


if __name__ == "__main__":
    main()
