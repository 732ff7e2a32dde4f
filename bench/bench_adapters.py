"""LoRA adapters on the embedded 0.5B: how long loading one takes, and what switching between two costs.

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_adapters            # needs the [transformers] extra
    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_adapters --repeats 3 --threads 2

The adapters are peft LoRA directories written here (rank 8 on q/k/v/o of all 24 blocks, random weights:
timing does not depend on what an adapter learned), one fresh pair per repeat, so every cold load is cold.

1. Cold load: `engine.load_adapter` of a new adapter. On llama.cpp that is reading and checking the directory,
   converting it to a GGUF LoRA (written to an empty cache) and loading that; "cached" loads it again once the
   conversion is cached (another replica, a restart). On Transformers it is peft's load.
2. Warm switch: adapters A and B both loaded. A request on A, then one on B (a switch), then another on B (no
   switch); each a different question over the same schema, greedy, a few tokens. llama.cpp drops its prompt
   cache on a switch (the cache was computed with the other weights), so the switch costs reading the whole
   prompt again; without a switch the shared schema prefix is reused.

Medians over the repeats. Results: bench/results/adapters.json and the `adapters` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_engines import engine_requests
from bench.paths import RESULTS_DIR
from bench.report import update_benchmarks_section
from deployments.embedded_models import ensure_embedded_model
from text2sql.pipeline.engine import Engine, GenerationRequest

logger = logging.getLogger("bench_adapters")
MODEL = "qwen2.5-coder-0.5b"
RANK = 8
MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


def write_random_adapter(directory: Path, base_gguf: Path, *, seed: int) -> Path:
    """A peft-format LoRA over q/k/v/o of every block, shaped from the base GGUF, with random weights."""
    import numpy as np
    from safetensors.numpy import save_file

    from deployments.engines.gguf_lora import GgufBase

    base = GgufBase.read(base_gguf)
    rng = np.random.default_rng(seed)
    tensors = {}
    for block in range(base.block_count):
        for name in MODULES:
            module = f"model.layers.{block}.self_attn.{name}"
            fan_in, fan_out = base.module_shape(module)
            tensors[f"base_model.model.{module}.lora_A.weight"] = (rng.standard_normal((RANK, fan_in)) * 0.01).astype(np.float32)
            tensors[f"base_model.model.{module}.lora_B.weight"] = (rng.standard_normal((fan_out, RANK)) * 0.01).astype(np.float32)
    directory.mkdir(parents=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": RANK, "lora_alpha": 16, "target_modules": list(MODULES)}
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return directory


async def timed(awaitable) -> float:
    started = time.perf_counter()
    await awaitable
    return time.perf_counter() - started


async def timed_request(engine: Engine, request: GenerationRequest, prompt_tokens: list[int]) -> float:
    started = time.perf_counter()
    output = await engine.generate(request)
    prompt_tokens.append(output.prompt_tokens)
    return time.perf_counter() - started


async def measure(name: str, engine: Engine, model_path: Path, work: Path, *, repeats: int, max_tokens: int) -> dict:
    prompts = engine_requests(max_tokens)
    await engine.generate(prompts[0])  # warm-up
    cold, cached, switch, stay, prompt_tokens = [], [], [], [], []
    for repeat in range(repeats):
        a = write_random_adapter(work / f"{name}-{repeat}" / "adapter-a", model_path, seed=2 * repeat)
        b = write_random_adapter(work / f"{name}-{repeat}" / "adapter-b", model_path, seed=2 * repeat + 1)
        cold.append(await timed(engine.load_adapter("a", str(a))))
        await engine.load_adapter("b", str(b))
        if name == "llama_cpp":  # again, from the cached conversion
            await engine.unload_adapter("a")
            cached.append(await timed(engine.load_adapter("a", str(a))))
        for index in range(len(prompts)):
            ask = [prompts[(index + k) % len(prompts)] for k in range(3)]
            await engine.generate(ask[0].model_copy(update={"adapter": "a"}))
            switch.append(await timed_request(engine, ask[1].model_copy(update={"adapter": "b"}), prompt_tokens))
            stay.append(await timed_request(engine, ask[2].model_copy(update={"adapter": "b"}), prompt_tokens))
        for adapter in ("a", "b"):
            await engine.unload_adapter(adapter)
        logger.info("%s repeat %d: cold %.2f s, switch %.3f s, stay %.3f s", name, repeat, cold[-1], switch[-1], stay[-1])
    result = {
        "cold_load_s_median": statistics.median(cold),
        "cold_load_s": [round(s, 3) for s in cold],
        "switch_request_s_median": statistics.median(switch),
        "same_adapter_request_s_median": statistics.median(stay),
        "switch_overhead_s_median": statistics.median(s - t for s, t in zip(switch, stay, strict=True)),
        "prompt_tokens_median": statistics.median(prompt_tokens),
    }
    if cached:
        result["cached_load_s_median"] = statistics.median(cached)
    return result


async def run(model_path: Path, *, repeats: int, max_tokens: int, threads: int) -> dict:
    from deployments.engines.llama_cpp import LlamaCppEngine
    from deployments.engines.settings import TransformersSettings
    from deployments.engines.transformers import TransformersEngine

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as scratch:
        work = Path(scratch)
        for name in ("llama_cpp", "transformers"):  # one engine in memory at a time
            if name == "llama_cpp":
                engine: Engine = LlamaCppEngine(
                    model_path, n_ctx=2048, n_threads=threads, adapter_cache_dir=work / "cache"
                )
            else:
                engine = TransformersEngine(model_path, TransformersSettings(torch_dtype="fp32"), num_threads=threads)
            await engine.start()
            results[name] = await measure(name, engine, model_path, work, repeats=repeats, max_tokens=max_tokens)
            logger.info("%s: %s", name, results[name])
            del engine
    return results


def render_table(results: dict) -> str:
    ll, tf = results["engines"]["llama_cpp"], results["engines"]["transformers"]
    lines = [
        f"Command: `{results['command']}` (model `{results['model']}`, {results['machine']['cpus']} CPUs, "
        f"{results['threads']} thread(s) per engine, in-process). Adapters: rank {RANK} on q/k/v/o of all 24 blocks, "
        f"a fresh pair per repeat; medians of {results['repeats']} repeats.",
        "",
        "| engine | first load on an engine | cold load | load, conversion cached | request after a switch "
        "| request, same adapter | switch cost |",
        "|---|---|---|---|---|---|---|",
        f"| llama.cpp (GGUF LoRA) | {ll['cold_load_s'][0]:.2f} s | {ll['cold_load_s_median']:.2f} s | "
        f"{ll['cached_load_s_median']:.2f} s | {ll['switch_request_s_median']:.2f} s | "
        f"{ll['same_adapter_request_s_median']:.2f} s | {ll['switch_overhead_s_median']:+.2f} s |",
        f"| Transformers (peft, fp32) | {tf['cold_load_s'][0]:.2f} s | {tf['cold_load_s_median']:.2f} s | "
        f"(no conversion) | {tf['switch_request_s_median']:.2f} s | {tf['same_adapter_request_s_median']:.2f} s | "
        f"{tf['switch_overhead_s_median']:+.2f} s |",
        "",
        "Cold load on llama.cpp includes checking the adapter and converting it to a GGUF LoRA; \"conversion "
        "cached\" is what another replica or a restart pays. The first load on an engine (the first repeat, also in "
        "the median) pays once more: on llama.cpp reading the base GGUF's tensor table (with its 151k-token "
        "vocabulary) to check shapes and name tensors, on Transformers wrapping the model with peft. A request is a "
        f"qwen-chat SQL prompt (about {round(ll['prompt_tokens_median'])} tokens) with max_tokens "
        f"{results['max_tokens']}, on adapter B right after one on "
        "A (a switch) or after one on B; the switch cost is the median of their differences. llama.cpp reads the "
        "whole prompt again after a switch (its prompt cache was computed with the other adapter); peft only "
        "changes which LoRA layers are active.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="fresh adapter pairs per engine")
    parser.add_argument("--max-tokens", type=int, default=4, help="per request: the switch cost is in the prompt")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per engine")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "adapters.json")
    parser.add_argument("--render", action="store_true", help="measure nothing: rewrite the section from --output")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.render:
        publish(json.loads(args.output.read_text()))
        return 0
    model_path = ensure_embedded_model(MODEL)
    results = {
        "model": MODEL,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["python -m bench.bench_adapters", *sys.argv[1:]]),
        "repeats": args.repeats,
        "max_tokens": args.max_tokens,
        "threads": args.threads,
    }
    results["engines"] = asyncio.run(run(model_path, repeats=args.repeats, max_tokens=args.max_tokens, threads=args.threads))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    publish(results)
    return 0


def publish(results: dict) -> None:
    table = render_table(results)
    update_benchmarks_section("adapters", table)
    print(table)


if __name__ == "__main__":
    raise SystemExit(main())
