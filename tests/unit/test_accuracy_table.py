"""bench_accuracy's ablation table: per model and suite, the largest set of questions that ran several variants,
and beside it the set that ran the most variants (a full run of the defaults and a 150-question ablation)."""

from __future__ import annotations

from bench.bench_accuracy import _ablation_table, _whole_suite_table


def run(variant: str, questions: int, accuracy: float = 0.5) -> dict:
    return {
        "model": "m", "suite": "spider", "variant": variant, "questions": questions, "accuracy": accuracy,
        "median_latency_ms": 1000, "p90_latency_ms": 2000, "correct": round(accuracy * questions),
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


def test_whole_suites_show_plain_old_and_new_default_and_the_gain() -> None:
    runs = [run("plain", 486, 0.40), run("old-default", 486, 0.37), run("default", 486, 0.50), run("n5", 486)]
    runs += [run("default", 150, 0.9)]  # a sample is not a whole suite
    runs += [dict(run("default", 75, 0.3), suite="chinook")]
    rows = [line for line in _whole_suite_table(runs) if line.startswith("| m |")]
    assert rows[0].startswith("| m | chinook (75) | - | - | 30.0% ")
    assert rows[0].endswith("| - | - |")  # no plain run: no gain; no date recorded
    spider = rows[1].split(" | ")
    assert spider[1] == "spider (486)"
    assert [cell.split(" ")[0] for cell in spider[2:5]] == ["40.0%", "37.0%", "50.0%"]
    assert spider[5] == "+10.0 points"
