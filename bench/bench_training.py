"""The fine-tuning report: what a training run cost, and what its adapter does against its base model.

    # 1. train (training/configs/*.yaml), 2. measure base and adapter over the same questions, taking turns:
    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_accuracy --models qwen2.5-coder-0.5b \\
        --adapter adapters/spider-qwen0.5b --variants default adapter --suites spider chinook sqleval-sqlite --threads 2
    # 3. this report:
    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_training --adapter adapters/spider-qwen0.5b

Reads the adapter's `text2sql-adapter.json` (written by the job: config, metrics, data sha256) and the accuracy
runs of its base (`default`) and of the adapter (`adapter`) in bench/results/accuracy.json. Writes
bench/results/training.json and the `training` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.paths import RESULTS_DIR
from bench.report import update_benchmarks_section
from training.adapter_output import GGUF_LORA


def run_summary(adapter: Path) -> dict:
    metadata = json.loads((adapter / "text2sql-adapter.json").read_text())
    metrics, config = metadata["metrics"], metadata["training_config"]
    runtime = metrics.get("train_runtime")
    tokens = metrics.get("num_input_tokens_seen")
    return {
        "name": metadata["name"],
        "base_model": metadata["base_model"],
        "served_base": metadata.get("served_base"),
        "examples": metrics.get("examples"),
        "held_out": metrics.get("held_out"),
        "steps": metrics.get("global_step"),
        "lora": config["lora"],
        "load_in_4bit": config["load_in_4bit"],
        "workers": config["scaling"]["num_workers"],
        "train_runtime_s": runtime,
        "tokens": tokens,
        "tokens_per_s": tokens / runtime if tokens and runtime else None,
        "peak_memory_mb": metrics.get("peak_memory_mb"),
        "final_loss": (metrics.get("loss_curve") or [None])[-1],
        "eval_loss": metrics.get("eval_loss"),  # on the held-out slice of the training data (eval_fraction)
        "adapter_mb": (adapter / "adapter_model.safetensors").stat().st_size / 1e6,
        "gguf_lora_mb": gguf_lora_mb(adapter, metadata["base_model"]),
        "held_out_evaluation": metadata.get("held_out_evaluation"),
        "data_sha256": metadata["data_sha256"],
    }


def gguf_lora_mb(adapter: Path, base_model: str) -> float | None:
    """The GGUF LoRA llama.cpp serves: the job's own file, else the one serving converts (and caches) for a GGUF base;
    None for a base llama.cpp does not serve."""
    from deployments.engines.gguf_lora import GgufBase, gguf_lora
    from deployments.engines.peft_lora import read_peft_lora
    from deployments.engines.transformers_loading import is_gguf
    from deployments.model_source import parse_model_source, resolve_model_path

    own = adapter / GGUF_LORA
    if own.is_file():
        return own.stat().st_size / 1e6
    source = parse_model_source(base_model)
    if source.kind not in ("embedded", "local"):  # a hub or S3 base: not fetched just to measure a file
        return None
    base = resolve_model_path(source)
    if not is_gguf(base):
        return None
    return gguf_lora(read_peft_lora(adapter), GgufBase.read(base), base_name=base.name).stat().st_size / 1e6


def accuracy_pairs(summary: dict, accuracy_file: Path) -> list[dict]:
    """Per suite: the base model's `default` run and the adapter's run over the same questions."""
    runs = json.loads(accuracy_file.read_text())["runs"] if accuracy_file.exists() else []
    base = summary["served_base"]
    pairs = []
    for adapted in (r for r in runs if r["model"] == base and r["variant"] == "adapter"):
        plain = next(
            (r for r in runs if (r["model"], r["suite"], r["questions"], r["variant"]) == (base, adapted["suite"], adapted["questions"], "default")),
            None,
        )
        if plain is not None:
            pairs.append({"suite": adapted["suite"], "questions": adapted["questions"], "rule": adapted.get("rule"),
                          "base": plain, "adapter": adapted})
    return sorted(pairs, key=lambda p: p["suite"])


def _how_asked(base: dict, adapted: dict) -> str:
    if base.get("finished_at") == adapted.get("finished_at"):
        return "in turn"
    return f"separately (base {str(base.get('finished_at'))[:10]}, adapter {str(adapted.get('finished_at'))[:10]})"


def _number(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(summary: dict, pairs: list[dict]) -> str:
    lora = summary["lora"]
    lines = [
        f"Adapter `{summary['name']}` on `{summary['base_model']}` (served as `{summary['served_base']}:{summary['name']}`): "
        f"LoRA r={lora['r']}, alpha={lora['alpha']} on {', '.join(lora['target_modules'])}"
        f"{' (QLoRA, 4-bit base)' if summary['load_in_4bit'] else ''}, {summary['workers']} worker(s).",
        "",
        "| examples | steps | wall time | tokens | tokens/s | peak memory | final loss | adapter | GGUF LoRA |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {summary['examples']} | {summary['steps']} | {_number(summary['train_runtime_s'], '.0f')} s | "
        f"{summary['tokens']} | {_number(summary['tokens_per_s'], '.0f')} | {_number(summary['peak_memory_mb'], '.0f')} MB | "
        f"{_number(summary['final_loss'], '.3f')} | {summary['adapter_mb']:.1f} MB | {_number(summary['gguf_lora_mb'], '.1f')} MB |",
    ]
    if pairs:
        lines += [
            "", "Base against adapter over the same questions (each suite by its own rule); *asked* says whether the "
            "two took turns question by question in one run, or ran separately (at temperature 0 with the same "
            "seed, so only the latencies are less comparable):", "",
            "| suite (questions) | base | adapter | change (points) | median latency base / adapter | asked |",
            "|---|---|---|---|---|---|",
        ]
        for pair in pairs:
            base, adapted = pair["base"], pair["adapter"]
            lines.append(
                f"| {pair['suite']} ({pair['questions']}) | {100 * base['accuracy']:.1f}% | {100 * adapted['accuracy']:.1f}% | "
                f"{100 * (adapted['accuracy'] - base['accuracy']):+.1f} | {base['median_latency_ms'] / 1000:.2f} s / "
                f"{adapted['median_latency_ms'] / 1000:.2f} s | {_how_asked(base, adapted)} |"
            )
    else:
        lines += ["", "No accuracy runs of the adapter yet (bench_accuracy --adapter ... --variants default adapter)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, required=True, help="the adapter directory a training job wrote")
    parser.add_argument("--accuracy", type=Path, default=RESULTS_DIR / "accuracy.json")
    args = parser.parse_args(argv)
    summary = run_summary(args.adapter)
    pairs = accuracy_pairs(summary, args.accuracy)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    result = {"run": summary, "accuracy": [{k: p[k] for k in ("suite", "questions", "rule")} |
                                            {"base": p["base"]["accuracy"], "adapter": p["adapter"]["accuracy"]} for p in pairs]}
    (RESULTS_DIR / "training.json").write_text(json.dumps(result, indent=2) + "\n")
    update_benchmarks_section("training", render(summary, pairs))
    print(render(summary, pairs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
