"""bench_accuracy's ablation table: per model and suite, the largest set of questions that ran several variants,
and beside it the set that ran the most variants (a full run of the defaults and a 150-question ablation)."""

from __future__ import annotations

from bench.bench_accuracy import _ablation_table


def run(variant: str, questions: int, accuracy: float = 0.5) -> dict:
    return {
        "model": "m", "suite": "spider", "variant": variant, "questions": questions, "accuracy": accuracy,
        "median_latency_ms": 1000, "p90_latency_ms": 2000,
    }


def test_the_full_run_and_the_widest_ablation_are_both_shown() -> None:
    runs = [run("default", 486), run("plain", 486)]
    runs += [run(v, 150) for v in ("default", "plain", "no-join", "n5", "values")]
    runs += [run(v, 100) for v in ("default", "no-repair", "constrained")]
    runs += [run("default", 40)]
    rows = [line for line in _ablation_table(runs) if line.startswith("| m |")]
    assert [row.split(" | ")[1] for row in rows] == ["spider (150)", "spider (486)"]


def test_one_set_is_shown_once() -> None:
    rows = [line for line in _ablation_table([run("default", 75), run("n5", 75)]) if line.startswith("| m |")]
    assert len(rows) == 1
