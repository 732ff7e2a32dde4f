"""The Serve app the accuracy benchmarks run: the embedded models on the CPU, one core each, in a Ray of its own."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from pathlib import Path

import requests

from deployments.builder import build_app
from deployments.embedded_models import ensure_embedded_model

# A model name ending in this serves the same embedded GGUF on Transformers (dequantized to float32), as
# configs/cpu-mixed.yaml does: the same weights and prompts through the other engine.
TRANSFORMERS_SUFFIX = "-hf"
# A model name ending in this serves the same embedded GGUF with the `xiyan` prompt (one Chinese user message,
# M-Schema): the accuracy benchmark's `xiyan` variant asks it beside the model's own template.
XIYAN_SUFFIX = "-xiyan"
CONTEXT_TOKENS = 8192
# The client waits 900 s per question (bench_accuracy.ask); one generation may take a third of that.
REQUEST_TIMEOUT_S = 900
GENERATION_TIMEOUT_S = 300


def bench_app_args(
    models: list[str], databases: dict[str, dict], *, threads: int, seed: int | None = None,
    example_store: Path | None = None, adapters: list[dict] | None = None,
) -> dict:
    """Every benchmark asks the same app: a long context for big schemas, one request at a time per model.
    `example_store` is there for the variants that ask for examples; by default none are shown."""
    return {
        "pipeline": {"example_store": str(example_store) if example_store else None},
        "default_model": models[0],
        # Benchmarks read the local servers as their administrators (sql-eval's PostgreSQL databases): allowed here.
        "databases": {name: {"allow_privileged_account": True, **config} for name, config in databases.items()},
        # The no-repair variant sends 'validate': false with 'execute': true; keys are off here.
        "auth": {"allow_unvalidated_execution": True},
        # A slow engine (Transformers on one core) on a busy machine must not turn slowness into wrong answers.
        # No prefilling at start: questions come grouped by database, so each model's prompt cache warms on the
        # first question of each anyway.
        "ingress": {"request_timeout_s": REQUEST_TIMEOUT_S, "warm_up_databases": 0},
        "models": [model_args(model, threads=threads, seed=seed) for model in models],
        # LoRA adapters ({name, base, path}), served as <base>:<name> on their base model's replica.
        "adapters": adapters or [],
    }


def model_args(model: str, *, threads: int, seed: int | None) -> dict:
    """One model, one request at a time on one core; `<embedded name>-hf` runs that GGUF on Transformers."""
    common = {
        "name": model, "generation": {"max_tokens": 384, "seed": seed}, "generation_timeout_s": GENERATION_TIMEOUT_S,
        "ray_actor_options": {"num_cpus": 1}, "max_ongoing_requests": 1,
    }  # fmt: skip
    if model.endswith(TRANSFORMERS_SUFFIX):
        source = ensure_embedded_model(model.removesuffix(TRANSFORMERS_SUFFIX))
        engine = {
            "backend": "transformers", "torch_dtype": "fp32", "num_threads": threads,
            "context_length": CONTEXT_TOKENS, "max_batch_size": 1,
        }  # fmt: skip
        return {**common, "source": str(source), "engine": engine}
    engine = {"n_ctx": CONTEXT_TOKENS, "n_threads": threads}
    if model.endswith(XIYAN_SUFFIX):
        source = ensure_embedded_model(model.removesuffix(XIYAN_SUFFIX))
        return {**common, "source": str(source), "engine": engine, "prompt_template": "xiyan"}
    return {**common, "source": str(ensure_embedded_model(model)), "engine": engine}


def start_bench_app(
    models: list[str], databases: dict[str, dict], *, port: int, name: str, threads: int = 1, seed: int | None = None,
    example_store: Path | None = None, adapters: list[dict] | None = None,
) -> str:
    """Start Ray and the accuracy benchmarks' app; its base URL once /health says every model is up."""
    args = bench_app_args(
        models, databases, threads=threads, seed=seed, example_store=example_store, adapters=adapters
    )
    return start_app(args, port=port, name=name)


def start_app(args: dict, *, port: int, name: str) -> str:
    """A Ray of its own on two CPUs, Serve on `port`, the app of `args`; its base URL once /health is 200.
    Stop it with `stop_bench_app`."""
    import ray
    from ray import serve

    # address="local": never attach to (and later shut down) another benchmark's Ray instance.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(args), name=name, route_prefix="/", blocking=False)
    base_url = f"http://127.0.0.1:{port}"
    wait_until_healthy(base_url, timeout_s=None)
    return base_url


def wait_until_healthy(base_url: str, *, timeout_s: float | None = 600) -> None:
    """Until /health answers 200; a slow or refused answer means not ready yet. None waits without a limit."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while deadline is None or time.monotonic() < deadline:
        try:
            if requests.get(f"{base_url}/health", timeout=10).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{base_url} never became healthy")


def stop_bench_app() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def run_per_model(models: list[str], run_model: Callable[[str], None]) -> None:
    """One thread per model: each model deployment has its own core, so the models run side by side."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(models)) as pool:
        for future in [pool.submit(run_model, model) for model in models]:
            future.result()
