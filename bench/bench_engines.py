"""Transformers against llama.cpp on the same model and prompts, and what batching gains on one Transformers replica.

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_engines          # needs the [transformers] extra
    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_engines --pairs 6 --batch-requests 8 --repeats 3
    .venv/bin/python -m bench.bench_engines --render     # after the accuracy run below: rewrite the section

Same weights: the embedded qwen2.5-coder-0.5b GGUF, read by llama.cpp as it is and by Transformers dequantized
to float32 (the cached conversion). Same prompts: SQL questions rendered by the qwen-chat template; greedy.

1. Engines in-process, one request at a time: the two take turns (llama.cpp, Transformers, Transformers,
   llama.cpp, ...) over the prompts, so a noisy machine slows both alike; medians of tokens/s and latency,
   and the median of the per-pair ratios against llama.cpp.
2. Through Serve, one replica of each backend in one app: /v1/completions at concurrency 1, 4 and 8, the same
   requests per cell; completion tokens/s. The Transformers replica batches concurrent requests (serve.batch,
   max_batch_size 8); the llama.cpp replica runs one at a time. Every cell is measured in each of --repeats
   rounds, the order reversed each round; a cell's gain is the median over rounds of its tokens/s over the
   same backend's concurrency 1 in the same round.
3. Spider accuracy of both engines on the accuracy tables' 100-question sample, read from bench_accuracy's
   results (run it with --models qwen2.5-coder-0.5b qwen2.5-coder-0.5b-hf, see ACCURACY_COMMAND).

Results: bench/results/engines.json and the `engines` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
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
from text2sql.pipeline.engine import Engine, GenerationRequest, SamplingParams
from text2sql.prompts import PromptInput, get_template

logger = logging.getLogger("bench_engines")
MODEL = "qwen2.5-coder-0.5b"
SERVED = {"llama_cpp": "qwen-llama-cpp", "transformers": "qwen-transformers"}
# bench_accuracy's names for the 0.5B on each engine (bench/serve_app.py) and the Spider sample both ran.
ACCURACY_MODELS = {"llama_cpp": MODEL, "transformers": f"{MODEL}-hf"}
ACCURACY_QUESTIONS = 100
ACCURACY_COMMAND = (
    "python -m bench.bench_accuracy --models qwen2.5-coder-0.5b qwen2.5-coder-0.5b-hf --suites spider "
    f"--limit {ACCURACY_QUESTIONS} --seed 1234"
)
SCHEMA = (
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, city TEXT, signed_up TEXT);\n"
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), "
    "total REAL, placed_at TEXT);"
)
QUESTIONS = [
    "How many customers live in Berlin?",
    "What is the total of all orders placed in 2024?",
    "Which customer has placed the most orders?",
    "List the names of customers who never placed an order.",
]
# A completion that goes on for long, so every served request generates its full max_tokens.
SERVED_PROMPT = (
    "-- SQLite schema\n" + SCHEMA + "\n-- Twenty useful analytics queries over these tables, one per line:\n1."
)


def engine_requests(max_tokens: int) -> list[GenerationRequest]:
    template = get_template("qwen-chat")
    sampling = SamplingParams(max_tokens=max_tokens, temperature=0.0, stop=list(template.default_stop))
    return [
        GenerationRequest(
            messages=template.render(PromptInput(question=q, schema_text=SCHEMA, dialect="sqlite")).messages,
            sampling=sampling,
        )
        for q in QUESTIONS
    ]


async def timed(engine: Engine, request: GenerationRequest) -> tuple[float, int, str]:
    started = time.perf_counter()
    output = await engine.generate(request)
    return time.perf_counter() - started, output.completion_tokens, output.text


async def compare_engines(model_path: Path, *, pairs: int, max_tokens: int, threads: int) -> dict:
    from deployments.engines.llama_cpp import LlamaCppEngine
    from deployments.engines.settings import TransformersSettings
    from deployments.engines.transformers import TransformersEngine

    engines: dict[str, Engine] = {
        "llama_cpp": LlamaCppEngine(model_path, n_ctx=4096, n_threads=threads),
        "transformers": TransformersEngine(model_path, TransformersSettings(torch_dtype="fp32"), num_threads=threads),
    }
    for name, engine in engines.items():
        started = time.perf_counter()
        await engine.start()
        logger.info("%s loaded in %.1f s", name, time.perf_counter() - started)
    prompts = engine_requests(max_tokens)
    for engine in engines.values():  # warm-up: first calls pay for page faults and allocations
        await timed(engine, prompts[0])
    samples: dict[str, list[tuple[float, int, str]]] = {name: [] for name in engines}
    same_text = 0
    for index in range(pairs):
        request = prompts[index % len(prompts)]
        # Alternate which side goes first too, so neither always follows the other.
        order = ["llama_cpp", "transformers"] if index % 2 == 0 else ["transformers", "llama_cpp"]
        for name in order:
            samples[name].append(await timed(engines[name], request))
        same_text += samples["llama_cpp"][-1][2].strip() == samples["transformers"][-1][2].strip()
        logger.info(
            "pair %d: %s", index, {n: f"{s[-1][1]} tokens in {s[-1][0]:.2f} s" for n, s in samples.items()}
        )

    def tokens_per_s(name: str) -> list[float]:
        return [tokens / seconds for seconds, tokens, _ in samples[name]]

    result = {
        name: {
            "tokens_per_s_median": statistics.median(tokens_per_s(name)),
            "latency_s_p50": statistics.median(seconds for seconds, _, _ in samples[name]),
            "completion_tokens_median": statistics.median(tokens for _, tokens, _ in samples[name]),
        }
        for name in engines
    }
    ratios = [t / ll for t, ll in zip(tokens_per_s("transformers"), tokens_per_s("llama_cpp"), strict=True)]
    latency = [t[0] / ll[0] for t, ll in zip(samples["transformers"], samples["llama_cpp"], strict=True)]
    return {
        "pairs": pairs,
        "max_tokens": max_tokens,
        "threads": threads,
        "engines": result,
        "transformers_over_llama_cpp_tokens_per_s_median": statistics.median(ratios),
        "transformers_over_llama_cpp_latency_median": statistics.median(latency),
        "same_text_pairs": same_text,
    }


def app_args(model_path: Path, *, threads: int, max_batch_size: int, max_tokens: int) -> dict:
    common = {
        "source": str(model_path),
        "generation": {"max_tokens": max_tokens, "temperature": 0.0},
        "ray_actor_options": {"num_cpus": threads},
    }
    return {
        "default_model": SERVED["transformers"],
        "models": [
            {
                **common, "name": SERVED["transformers"], "backend": "transformers",
                "engine": {"torch_dtype": "fp32", "max_batch_size": max_batch_size, "batch_wait_timeout_s": 0.05},
                "max_ongoing_requests": max_batch_size,
            },
            {
                **common, "name": SERVED["llama_cpp"], "backend": "llama_cpp",
                "engine": {"n_ctx": 2048}, "max_ongoing_requests": 1,
            },
        ],
    }


def served_completion(base_url: str, model: str, max_tokens: int) -> int:
    response = requests.post(
        f"{base_url}/v1/completions",
        json={"model": model, "prompt": SERVED_PROMPT, "max_tokens": max_tokens, "temperature": 0},
        timeout=600,
    )
    response.raise_for_status()
    return response.json()["usage"]["completion_tokens"]


def served_throughput(base_url: str, model: str, *, concurrency: int, requests_total: int, max_tokens: int) -> dict:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        tokens = sum(pool.map(lambda _: served_completion(base_url, model, max_tokens), range(requests_total)))
    elapsed = time.perf_counter() - started
    return {"tokens_per_s": tokens / elapsed, "requests_per_s": requests_total / elapsed, "completion_tokens": tokens}


def measure_batching(
    model_path: Path, *, threads: int, requests_total: int, max_tokens: int, levels: list[int], repeats: int
) -> dict:
    import ray
    from ray import serve

    ray.init(address="local", num_cpus=2 * threads, include_dashboard=False, log_to_driver=False)
    port = 8767
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    base_url = f"http://127.0.0.1:{port}"
    try:
        serve.run(
            build_app(app_args(model_path, threads=threads, max_batch_size=max(levels), max_tokens=max_tokens)),
            name="bench-engines", route_prefix="/", blocking=False,
        )  # fmt: skip
        wait_until_healthy(base_url)
        for model in SERVED.values():
            served_completion(base_url, model, max_tokens)  # warm-up
        runs = []
        for repeat in range(repeats):
            # A/B: every repeat measures every cell, in the opposite order to the one before, so drift on a
            # shared machine does not always favour the same concurrency or backend.
            cells = [(c, b) for c in levels for b in SERVED]
            for concurrency, backend in cells if repeat % 2 == 0 else reversed(cells):
                cell = served_throughput(
                    base_url, SERVED[backend], concurrency=concurrency, requests_total=requests_total,
                    max_tokens=max_tokens,
                )  # fmt: skip
                runs.append({"repeat": repeat, "backend": backend, "concurrency": concurrency, **cell})
                logger.info(
                    "repeat %d, %s concurrency %d: %.2f tokens/s", repeat, backend, concurrency, cell["tokens_per_s"]
                )
    finally:
        serve.shutdown()
        ray.shutdown()
    return {
        "requests_per_cell": requests_total, "max_tokens": max_tokens, "threads": threads,
        "max_batch_size": max(levels), "repeats": repeats, "runs": runs, "cells": batching_cells(runs, levels),
    }  # fmt: skip


def batching_cells(runs: list[dict], levels: list[int]) -> list[dict]:
    """Per backend and concurrency: the median tokens/s over the repeats, and the median of each repeat's own
    ratio against the same backend at the lowest concurrency (the baseline, one request at a time)."""
    cells = []
    for backend in SERVED:
        mine = [r for r in runs if r["backend"] == backend]
        baseline = {r["repeat"]: r["tokens_per_s"] for r in mine if r["concurrency"] == levels[0]}
        for concurrency in levels:
            cell_runs = [r for r in mine if r["concurrency"] == concurrency]
            cells.append({
                "backend": backend, "concurrency": concurrency,
                "tokens_per_s": statistics.median(r["tokens_per_s"] for r in cell_runs),
                "requests_per_s": statistics.median(r["requests_per_s"] for r in cell_runs),
                "gain_over_concurrency_1": statistics.median(
                    r["tokens_per_s"] / baseline[r["repeat"]] for r in cell_runs
                ),
                "gains": [round(r["tokens_per_s"] / baseline[r["repeat"]], 3) for r in cell_runs],
            })  # fmt: skip
    return cells


def spider_accuracy(path: Path, questions: int) -> dict[str, dict]:
    """bench_accuracy's runs of the 0.5B on each engine over the same Spider sample (default variant), if run."""
    if not path.exists():
        return {}
    found = {}
    for run in json.loads(path.read_text())["runs"]:
        if run["suite"] == "spider" and run["variant"] == "default" and run["questions"] == questions:
            for backend, model in ACCURACY_MODELS.items():
                if run["model"] == model:
                    found[backend] = run
    return found


def render_table(results: dict, accuracy: dict[str, dict]) -> str:
    e = results["engines"]
    ll, tf = e["engines"]["llama_cpp"], e["engines"]["transformers"]
    b = results["batching"]
    lines = [
        f"Command: `{results['command']}` (model `{results['model']}`, {results['machine']['cpus']} CPUs, "
        f"{e['threads']} thread(s) per engine{_load(results['machine'])}). Same GGUF: llama.cpp reads it as it is, "
        "Transformers dequantized to float32 (its cached conversion).",
        "",
        f"In-process, one request at a time: {e['pairs']} alternating pairs over {len(QUESTIONS)} qwen-chat SQL "
        f"prompts, greedy, max_tokens {e['max_tokens']}, medians; {e['same_text_pairs']}/{e['pairs']} pairs "
        "wrote the same text.",
        "",
        "| engine | tokens/s | p50 latency | tokens per answer | vs llama.cpp: tokens/s | vs llama.cpp: latency |",
        "|---|---|---|---|---|---|",
        f"| llama.cpp | {ll['tokens_per_s_median']:.1f} | {ll['latency_s_p50']:.2f} s | "
        f"{ll['completion_tokens_median']:g} | 1.00 | 1.00 |",
        f"| Transformers (fp32) | {tf['tokens_per_s_median']:.1f} | {tf['latency_s_p50']:.2f} s | "
        f"{tf['completion_tokens_median']:g} | {e['transformers_over_llama_cpp_tokens_per_s_median']:.3f} | "
        f"{e['transformers_over_llama_cpp_latency_median']:.2f} |",
        "",
        "The ratios are medians of the per-pair ratios.",
    ]
    if accuracy:
        lines += [
            "",
            f"Spider accuracy on the fixed {ACCURACY_QUESTIONS}-question sample of the accuracy tables, the same "
            "pipeline and prompts (default variant: validation, identifier fixes, up to 2 repairs), one thread "
            f"per engine, both served side by side: `{ACCURACY_COMMAND}`.",
            "",
            "| engine | served as | Spider accuracy | median latency |",
            "|---|---|---|---|",
        ]
        for backend, label in (("llama_cpp", "llama.cpp"), ("transformers", "Transformers (fp32)")):
            if backend in accuracy:
                run = accuracy[backend]
                lines.append(
                    f"| {label} | `{run['model']}` | {100 * run['accuracy']:.1f}% ({run['correct']}/{run['questions']}) "
                    f"| {run['median_latency_ms'] / 1000:.2f} s |"
                )
    lines += [
        "",
        f"Through Serve, one replica each ({b['threads']} thread(s)), `/v1/completions`, {b['requests_per_cell']} "
        f"requests per cell, max_tokens {b['max_tokens']}: completion tokens/s (median of {b['repeats']} repeats, "
        "every cell measured in each repeat, the order reversed from one repeat to the next), and the gain over "
        f"concurrency {results['concurrency'][0]}: the median of each repeat's own ratio, then the lowest and "
        "highest of those ratios. Transformers batches "
        f"(max_batch_size {b['max_batch_size']}); llama.cpp runs one request at a time.",
        "",
        "| backend | " + " | ".join(f"concurrency {c}" for c in results["concurrency"]) + " |",
        "|---|" + "---|" * len(results["concurrency"]),
    ]
    for backend, label in (("transformers", "Transformers"), ("llama_cpp", "llama.cpp")):
        row = {c["concurrency"]: c for c in b["cells"] if c["backend"] == backend}
        cells = [
            f"{row[c]['tokens_per_s']:.1f} (×{row[c]['gain_over_concurrency_1']:.2f}"
            + (f", ×{min(row[c]['gains']):.2f}–{max(row[c]['gains']):.2f})" if c != results["concurrency"][0] else ")")
            for c in results["concurrency"]
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _load(machine: dict) -> str:
    if "load_average_start" not in machine:
        return ""
    return f", 1-minute load average {machine['load_average_start']:.1f} at the start and {machine['load_average_end']:.1f} at the end"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=8, help="alternating llama.cpp/Transformers pairs")
    parser.add_argument("--max-tokens", type=int, default=48, help="per in-process request (answers stop earlier)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per engine (and num_cpus per replica)")
    parser.add_argument("--batch-requests", type=int, default=8, help="served requests per concurrency cell")
    parser.add_argument("--batch-max-tokens", type=int, default=16, help="per served request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=5, help="times every served cell is measured")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "engines.json")
    parser.add_argument(
        "--accuracy-results", type=Path, default=RESULTS_DIR / "accuracy.json",
        help=f"bench_accuracy's results, read for the Spider rows ({ACCURACY_COMMAND})",
    )  # fmt: skip
    parser.add_argument(
        "--render", action="store_true", help="measure nothing: rewrite the section from --output and the accuracy results"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if args.render:
        publish(json.loads(args.output.read_text()), args.accuracy_results)
        return 0

    model_path = ensure_embedded_model(MODEL)
    results: dict = {
        "model": MODEL,
        # Other work on the machine slows both engines; the load average says how busy it was.
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_start": os.getloadavg()[0]},
        # Not sys.argv[0]: under -m that is this file's absolute path.
        "command": " ".join(["python -m bench.bench_engines", *sys.argv[1:]]),
        "concurrency": args.concurrency,
    }
    results["engines"] = asyncio.run(
        compare_engines(model_path, pairs=args.pairs, max_tokens=args.max_tokens, threads=args.threads)
    )
    logger.info("engines: %s", results["engines"])
    results["batching"] = measure_batching(
        model_path, threads=args.threads, requests_total=args.batch_requests, max_tokens=args.batch_max_tokens,
        levels=args.concurrency, repeats=args.repeats,
    )  # fmt: skip
    results["machine"]["load_average_end"] = os.getloadavg()[0]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    publish(results, args.accuracy_results)
    return 0


def publish(results: dict, accuracy_results: Path) -> None:
    table = render_table(results, spider_accuracy(accuracy_results, ACCURACY_QUESTIONS))
    update_benchmarks_section("engines", table)
    print(table)


if __name__ == "__main__":
    raise SystemExit(main())
