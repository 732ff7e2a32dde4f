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


def test_the_chinese_gap_is_judged_on_the_same_questions_and_says_when_each_side_ran(monkeypatch) -> None:
    import bench.bench_accuracy as accuracy

    verdicts = {
        "spider-zh": {"spider-1": True, "spider-2": False, "spider-3": False},
        "spider": {"spider-1": True, "spider-2": True, "spider-3": False, "spider-4": True},  # 4 is not asked in Chinese
    }
    monkeypatch.setattr(accuracy, "_verdicts", lambda r: verdicts[r["suite"]])
    zh = dict(run("default", 3), suite="spider-zh", finished_at="2026-11-24 13:00:00")
    en = dict(run("default", 486), finished_at="2026-12-04 04:00:00")
    rows = [line for line in accuracy._chinese_gap_table([zh, en]) if line.startswith("| m |")]
    assert rows == ["| m | default | 3 | 33.3% (1) | 66.7% (2) | -33.3 | 2026-11-24 / 2026-12-04 |"]


def test_every_variant_has_a_column() -> None:
    from bench.bench_accuracy import VARIANT_ORDER, VARIANTS

    assert set(VARIANTS) | {"old-default"} == set(VARIANT_ORDER)


def test_the_no_inferred_keys_variant_asks_a_twin_of_each_database_without_inference() -> None:
    from bench.bench_accuracy import DECLARED_KEYS_ONLY, with_declared_keys_only

    databases = {"sqleval_postgres_academic": {"url": "postgresql://x/academic", "timeout_s": 20}}
    served = with_declared_keys_only(databases)
    assert served["sqleval_postgres_academic"] == databases["sqleval_postgres_academic"]
    assert served["sqleval_postgres_academic" + DECLARED_KEYS_ONLY] == {
        "url": "postgresql://x/academic", "timeout_s": 20, "infer_relationships": False,
    }


def test_wrong_answers_are_split_into_wrong_rows_refused_and_cut_short(monkeypatch, tmp_path) -> None:
    import json

    import bench.bench_accuracy as accuracy

    answers = [
        {"id": "1", "correct": True, "status": 200, "error": None, "sql": "SELECT 1"},
        {"id": "2", "correct": False, "status": 200, "error": None, "sql": "SELECT 2"},
        {"id": "3", "correct": False, "status": 200, "error": None, "sql": "SELECT 3"},
        {"id": "4", "correct": False, "status": 200, "error": "unknown column 'x'", "sql": "SELECT x"},
        {"id": "5", "correct": False, "status": 400, "error": {"type": "unsafe_sql"}, "sql": None},
        {"id": "6", "correct": False, "status": 200, "error": "the model stopped at max_tokens (384)", "sql": "SELECT"},
    ]
    path = tmp_path / "answers.jsonl"
    path.write_text("\n".join(json.dumps(a) for a in answers) + "\n")
    monkeypatch.setattr(accuracy, "detail_path", lambda r: path)
    assert [accuracy.miss_kind(a) for a in answers] == [
        "right", "wrong rows", "wrong rows", "refused", "refused", "cut short"
    ]
    rows = [line for line in accuracy._misses_table([run("default", 486), run("n5", 486), run("plain", 150)])
            if line.startswith("| m |")]
    assert rows == ["| m | spider (486) | default | 5 | 2 (40%) | 2 (40%) | 1 (20%) |"]
