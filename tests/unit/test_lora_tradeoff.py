"""The LoRA trade-off's settings (bench/bench_lora_tradeoff.py): each is the shipped recipe with exactly one thing
changed, and each is a valid training config, so a long unattended run does not stop at its third setting."""

from __future__ import annotations

import yaml

from bench.bench_lora_tradeoff import RECIPE, ROOT, SETTINGS, setting_config, shipped_adapter
from training.config import TrainingConfig

RECIPE_CONFIG = yaml.safe_load(RECIPE.read_text())


def changed_fields(setting: str, steps: int) -> dict:
    config = setting_config(setting, steps, RECIPE_CONFIG)
    changed = {f"lora.{k}": v for k, v in config["lora"].items() if RECIPE_CONFIG["lora"].get(k) != v}
    changed |= {f"optim.{k}": v for k, v in config["optim"].items() if RECIPE_CONFIG["optim"].get(k) != v}
    return changed


def test_every_setting_is_a_valid_training_config_with_its_own_name_and_output():
    configs = [TrainingConfig.model_validate(setting_config(s, 20, RECIPE_CONFIG)) for s in SETTINGS]
    assert [c.name for c in configs] == list(SETTINGS)
    assert len({str(c.output_dir) for c in configs}) == 1  # one directory per --steps, an adapter per setting in it
    assert all(not c.evaluation.enabled for c in configs)  # scored on Spider afterwards, all on the same questions
    assert all(c.lora.layers_to_transform == RECIPE_CONFIG["lora"]["layers_to_transform"] for c in configs)


def test_each_setting_changes_only_its_own_knob():
    attention = RECIPE_CONFIG["lora"]["target_modules"]
    assert changed_fields("r16", 40) == {}  # the recipe itself (40 steps, rank 16, alpha 32)
    assert changed_fields("r8", 40) == {"lora.r": 8, "lora.alpha": 16}
    assert changed_fields("r32", 40) == {"lora.r": 32, "lora.alpha": 64}
    assert changed_fields("r16-mlp", 40) == {"lora.target_modules": attention + ["gate_proj", "up_proj", "down_proj"]}
    assert changed_fields("r16-half-steps", 40) == {"optim.max_steps": 20}
    assert changed_fields("r16-double-steps", 40) == {"optim.max_steps": 80}
    assert changed_fields("r16", 20) == {"optim.max_steps": 20}
    assert changed_fields("recipe", 10) == {}


def test_only_the_recipe_itself_reuses_the_committed_adapter():
    shipped = ROOT / "adapters" / RECIPE_CONFIG["name"]
    assert (shipped / "text2sql-adapter.json").is_file()
    steps = RECIPE_CONFIG["optim"]["max_steps"] // 2
    assert shipped_adapter("r16-double-steps", steps, RECIPE_CONFIG) == shipped
    assert shipped_adapter("r16", 2 * steps, RECIPE_CONFIG) == shipped
    assert shipped_adapter("recipe", steps, RECIPE_CONFIG) == shipped
    others = [s for s in SETTINGS if s not in ("r16-double-steps", "recipe")]
    assert [shipped_adapter(s, steps, RECIPE_CONFIG) for s in others] == [None] * len(others)
    assert shipped_adapter("r8", 2 * steps, RECIPE_CONFIG) is None


def test_adapter_dir_is_the_committed_adapter_for_the_recipe_and_the_work_directory_otherwise():
    from bench.bench_lora_tradeoff import WORK_DIR, adapter_dir

    assert adapter_dir("recipe", 10) == ROOT / "adapters" / RECIPE_CONFIG["name"]
    assert adapter_dir("r8", 10) == WORK_DIR / "10" / "r8"


def test_the_table_shows_each_setting_with_its_losses_against_the_base():
    from bench.bench_lora_tradeoff import render

    def summary(r: int, modules: list[str], steps: int, eval_loss: float | None) -> dict:
        return {"lora": {"r": r, "target_modules": modules}, "steps": steps, "train_runtime_s": 1200,
                "adapter_mb": 2.2 * r / 8, "final_loss": 0.3, "eval_loss": eval_loss}

    attention = ["q_proj", "k_proj", "v_proj", "o_proj"]
    result = {
        "steps": 10, "questions": 60, "shipped": ["recipe"],
        "adapters": {"r8": summary(8, attention, 10, 0.281), "recipe": summary(16, attention, 40, None)},
        "scores": {"base": {"accuracy": 0.5, "median_latency_ms": 1500}, "r8": {"accuracy": 0.55, "median_latency_ms": 1600},
                   "recipe": {"accuracy": 0.45, "median_latency_ms": 1700}},
    }  # fmt: skip
    rows = [line for line in render(result).splitlines() if line.startswith("| ")]
    assert rows[0].split(" | ")[7] == "held-out loss"
    assert rows[1].startswith("| base model |") and "50.0%" in rows[1]
    assert rows[2] == "| r8 | 8 | attention | 10 | 20 min | 2.2 MB | 0.300 | 0.281 | 55.0% | +5.0 | 1.60 s |"
    assert rows[3].startswith("| recipe (the shipped adapter) | 16 | attention | 40 |") and "| - | 45.0% | -5.0 |" in rows[3]

    result["adapters"]["r16-mlp"] = summary(16, attention + ["gate_proj", "up_proj", "down_proj"], 10, 0.25)
    table = render(result)
    assert "| r16-mlp | 16 | attention + MLP | 10 | 20 min | 4.4 MB | 0.300 | 0.250 | not scored | - | - |" in table
    assert table.endswith("not asked the Spider questions: r16-mlp.")
