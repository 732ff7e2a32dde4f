"""The LoRA trade-off on the CPU: rank, target modules and steps, each adapter scored on the same Spider questions.

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_lora_tradeoff [--steps 20] [--limit 150] [--only r8 r32]

Every setting is the shipped recipe (training/configs/spider-qwen0.5b-cpu.yaml) with one thing changed:

  r8, r16, r32     LoRA rank 8, 16 (the recipe's) and 32, alpha twice the rank, on q/k/v/o
  r16-mlp          rank 16 on q/k/v/o and the MLP (gate/up/down)
  r16-half-steps   rank 16, half of --steps
  r16-double-steps rank 16, twice --steps
  recipe           the recipe itself, at its own steps: the committed adapter, scored beside the others, never
                   trained here

Each is trained by `python -m training.train` as a user runs it, into data/lora-tradeoff/<steps>/<setting>; a
setting whose adapter is there already is not trained again, so an interrupted run goes on where it stopped. A
setting that is the recipe itself (with --steps 20, r16-double-steps: rank 16 for 40 steps) is the committed
adapter, adapters/spider-qwen0.5b, and is not trained again either.
Training runs one at a time (each takes both cores). Then one app serves the base model with every adapter on its
replica, and the same fixed sample of Spider dev's public half (`--limit`, seed 1234; Spider's rule) goes to the
base and to each adapter, taking turns question by question. About 35 minutes of training per 20 steps on 2 cores.

Writes bench/results/lora-tradeoff.json and the `lora-tradeoff` section of BENCHMARKS.md; the table again from the
JSON: `python -c "from bench.bench_lora_tradeoff import rerender; rerender()"`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench import bench_accuracy
from bench.bench_training import run_summary
from bench.paths import RESULTS_DIR, add_dataset_flags, dataset_dir_from_args
from bench.report import publish
from bench.serve_app import run_per_model, start_bench_app, stop_bench_app

logger = logging.getLogger("bench_lora_tradeoff")
ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "training" / "configs" / "spider-qwen0.5b-cpu.yaml"
WORK_DIR = ROOT / "data" / "lora-tradeoff"
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP = ["gate_proj", "up_proj", "down_proj"]
RESULT_FILE = RESULTS_DIR / "lora-tradeoff.json"
SETTINGS = ("r8", "r16", "r32", "r16-mlp", "r16-half-steps", "r16-double-steps", "recipe")


def setting_changes(setting: str, steps: int, recipe: dict) -> dict:
    """What one setting changes in the recipe: its LoRA and optimizer fields."""
    rank = {"r8": 8, "r32": 32}.get(setting, 16)
    lora = {"r": rank, "alpha": 2 * rank, "target_modules": ATTENTION + (MLP if setting == "r16-mlp" else [])}
    factor = {"r16-half-steps": 0.5, "r16-double-steps": 2.0}.get(setting, 1.0)
    steps = recipe["optim"]["max_steps"] if setting == "recipe" else max(1, round(steps * factor))
    return {"lora": lora, "optim": {"max_steps": steps}}


def setting_config(setting: str, steps: int, recipe: dict) -> dict:
    """The recipe with one setting's changes, its own run name and output, and no held-out evaluation (the
    trade-off scores every adapter on the same Spider questions instead)."""
    changes = setting_changes(setting, steps, recipe)
    return {
        **recipe,
        "name": setting,
        "lora": {**recipe["lora"], **changes["lora"]},
        "optim": {**recipe["optim"], **changes["optim"]},
        "output_dir": str(WORK_DIR / str(steps)),
        "storage_path": str(WORK_DIR / str(steps) / "runs"),
        "evaluation": {**recipe.get("evaluation", {}), "enabled": False},
        "data": {**recipe["data"], "train": str((ROOT / recipe["data"]["train"]).resolve()),
                 "databases_dir": str((ROOT / recipe["data"]["databases_dir"]).resolve())},
    }  # fmt: skip


def shipped_adapter(setting: str, steps: int, recipe: dict) -> Path | None:
    """The committed adapter, when `setting` is exactly the recipe it was trained with (same LoRA, same steps)."""
    changes = setting_changes(setting, steps, recipe)
    same_lora = all(recipe["lora"].get(key) == value for key, value in changes["lora"].items())
    adapter = ROOT / recipe["output_dir"] / recipe["name"]
    same = same_lora and recipe["optim"]["max_steps"] == changes["optim"]["max_steps"]
    return adapter if same and (adapter / "text2sql-adapter.json").is_file() else None


def adapter_dir(setting: str, steps: int, recipe: dict | None = None) -> Path:
    """Where a setting's adapter is: the committed one for the recipe itself, else this benchmark's work directory."""
    recipe = recipe or yaml.safe_load(RECIPE.read_text())
    return shipped_adapter(setting, steps, recipe) or Path(setting_config(setting, steps, recipe)["output_dir"]) / setting


def train(setting: str, steps: int) -> Path:
    """Train one setting unless its adapter exists; the adapter's directory."""
    recipe = yaml.safe_load(RECIPE.read_text())
    adapter = adapter_dir(setting, steps, recipe)
    if not adapter.is_relative_to(WORK_DIR):
        logger.info("%s: the recipe itself, trained already: %s", setting, adapter)
        return adapter
    config = setting_config(setting, steps, recipe)
    if (adapter / "text2sql-adapter.json").is_file():
        logger.info("%s: adapter already trained in %s", setting, adapter)
        return adapter
    config_path = WORK_DIR / str(steps) / f"{setting}.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    logger.info("%s: training (%s)", setting, config_path)
    # --fresh: a run of this name without a finished adapter was interrupted; start it over.
    subprocess.run([sys.executable, "-m", "training.train", "--config", str(config_path), "--fresh"], cwd=ROOT, check=True)
    return adapter


def score(
    adapters: dict[str, Path], *, steps: int, limit: int, threads: int, spider_dir: Path | None
) -> dict[str, dict]:
    """The base (`base`) and every adapter over the same Spider questions, taking turns; one result each."""
    base = "qwen2.5-coder-0.5b"
    # Variant names of their own, so that the per-question files (bench/results/accuracy/) of one --steps never
    # overwrite another's, nor the accuracy benchmark's `default` run of the same sample.
    variants = {"tradeoff-base": "base"} | {f"tradeoff-{steps}-{name}": name for name in adapters}
    bench_accuracy.VARIANTS["tradeoff-base"] = {}
    for variant, name in variants.items():
        if name != "base":
            bench_accuracy.VARIANTS[variant] = {"model": f"{base}:{name}"}
    databases = bench_accuracy.database_config(["spider"], spider_dir=spider_dir)
    questions = bench_accuracy.suite_questions("spider", spider_dir=spider_dir)
    questions = bench_accuracy.sample_in_suite_order(questions, limit) if limit < len(questions) else questions
    served = [{"name": name, "base": base, "path": str(path.resolve())} for name, path in adapters.items()]
    base_url = start_bench_app([base], databases, port=8767, name="lora-tradeoff", threads=threads, seed=1234, adapters=served)
    results: dict[str, dict] = {}
    try:
        gold = bench_accuracy.GoldCache(databases)

        def run_model(model: str) -> None:
            for result in bench_accuracy.run_variants(base_url, model, "spider", list(variants), questions, gold):
                results[variants[result["variant"]]] = result

        run_per_model([base], run_model)
    finally:
        stop_bench_app()
    return results


def render(result: dict) -> str:
    base = result["scores"]["base"]
    scored_settings = [setting for setting in SETTINGS if setting in result["scores"]]
    only = "" if set(scored_settings) == set(SETTINGS) else f" --only {' '.join(scored_settings)}"
    lines = [
        f"Command: `python -m bench.bench_lora_tradeoff --steps {result['steps']} --limit {result['questions']}{only}`. The "
        f"shipped recipe (`training/configs/spider-qwen0.5b-cpu.yaml`: Spider train, top 12 of 24 blocks, 8 examples "
        f"per step, 2 cores) with one thing changed per row; every adapter and the base answer the same "
        f"{result['questions']} Spider questions (Spider's rule), taking turns, through the served pipeline.",
        "",
        "| setting | r | target modules | steps | training | adapter | final loss | held-out loss | Spider | vs base | median latency |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| base model | - | - | - | - | - | - | - | {100 * base['accuracy']:.1f}% | - | "
        f"{base['median_latency_ms'] / 1000:.2f} s |",
    ]
    for setting in SETTINGS:
        if setting not in result["adapters"]:
            continue
        info, scored = result["adapters"][setting], result["scores"].get(setting)
        modules = "attention + MLP" if "gate_proj" in info["lora"]["target_modules"] else "attention"
        shipped = " (the shipped adapter)" if setting in result.get("shipped", []) else ""
        spider = (
            f"{100 * scored['accuracy']:.1f}% | {100 * (scored['accuracy'] - base['accuracy']):+.1f} | "
            f"{scored['median_latency_ms'] / 1000:.2f} s"
            if scored else "not scored | - | -"
        )
        lines.append(
            f"| {setting}{shipped} | {info['lora']['r']} | {modules} | {info['steps']} | {info['train_runtime_s'] / 60:.0f} min | "
            f"{info['adapter_mb']:.1f} MB | {info['final_loss']:.3f} | {_loss(info.get('eval_loss'))} | {spider} |"
        )
    unscored = [setting for setting in result["adapters"] if setting not in result["scores"]]
    if unscored:
        lines += ["", f"Trained after the scoring run, so not asked the Spider questions: {', '.join(unscored)}."]
    return "\n".join(lines)


def _loss(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def rerender(add: tuple[str, ...] = ()) -> None:
    """The published table again from bench/results/lora-tradeoff.json, each adapter's summary read afresh; `add`:
    settings trained since at the same --steps, shown without a Spider score."""
    result = json.loads(RESULT_FILE.read_text())
    names = [*result["adapters"], *(name for name in add if name not in result["adapters"])]
    result["adapters"] = {name: run_summary(adapter_dir(name, result["steps"])) for name in names}
    publish("lora-tradeoff", result, render(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps of the r8/r16/r32/r16-mlp settings")
    parser.add_argument("--limit", type=int, default=150, help="Spider questions each adapter answers")
    parser.add_argument("--only", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--threads", type=int, default=2)
    add_dataset_flags(parser, "spider")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = time.monotonic()
    adapters = {setting: train(setting, args.steps) for setting in args.only}
    logger.info("trained %d settings in %.0f min", len(adapters), (time.monotonic() - started) / 60)
    # Two settings can be one adapter (at --steps 20, r16-double-steps and recipe are both the committed one): ask it once.
    first_setting = {}
    for setting, path in adapters.items():
        first_setting.setdefault(path, setting)
    distinct = {setting: path for path, setting in first_setting.items()}
    scores = score(distinct, steps=args.steps, limit=args.limit, threads=args.threads, spider_dir=dataset_dir_from_args(args, "spider"))
    for setting, path in adapters.items():
        scores.setdefault(setting, scores[first_setting[path]])
    result = {
        "steps": args.steps, "questions": scores["base"]["questions"],
        "adapters": {name: run_summary(path) for name, path in adapters.items()},
        "shipped": sorted(name for name, path in adapters.items() if not path.is_relative_to(WORK_DIR)),
        "scores": {name: {k: run[k] for k in ("accuracy", "correct", "median_latency_ms")} for name, run in scores.items()},
    }  # fmt: skip
    publish("lora-tradeoff", result, render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
