"""Re-judge saved accuracy runs by every rule, from their detail files, without asking any model again.

    python -m bench.rescore_accuracy [--results bench/results/accuracy.json]

Each answer's SQL is run again, read-only, on its database, and compared with the gold result by Spider's rule
and by sql-eval's. Runs saved before both rules were recorded get them (and a p90 latency); a run's `accuracy`
becomes its suite's own rule. An answer that had failed (an error, or no HTTP 200) stays wrong by both. The
sql-eval figure of a run judged before must come out the same: the script reports any that do not.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from bench.bench_accuracy import (
    RULES,
    GoldCache,
    database_config,
    detail_path,
    p90,
    resolve_url,
    rule_summary,
    score_result,
    suite_questions,
    suite_rule,
)
from bench.paths import RESULTS_DIR, add_dataset_flags, dataset_dir_from_args
from bench.report import update_benchmarks_section
from text2sql.execution import ExecutionError, execute_read_only

logger = logging.getLogger("rescore_accuracy")


def rescore_run(run: dict, details: list[dict], questions: dict[str, dict], gold: GoldCache) -> int:
    """Fill in `by_rule` and the run's summary; the number of answers whose stored verdict changed."""
    changed = 0
    for detail in details:
        question = questions[detail["id"]]
        by_rule = dict.fromkeys(RULES, False)
        if detail.get("status") == 200 and detail.get("error") is None and detail.get("sql"):
            url = resolve_url(gold.databases[question["database"]])
            try:
                result = execute_read_only(url, detail["sql"], max_rows=20000, timeout_s=20)
                by_rule = score_result(question, result, gold)
            except ExecutionError:
                pass
        before = detail["correct"]
        if "by_rule" not in detail and by_rule[run.get("rule", "sql-eval")] != before:
            changed += 1
        detail["by_rule"] = by_rule
        detail["correct"] = by_rule[suite_rule(run["suite"])]
    run.update(rule_summary(run["suite"], details))
    run["correct"] = run["correct_by_rule"][run["rule"]]
    run["accuracy"] = run["correct"] / run["questions"] if run["questions"] else 0.0
    run["p90_latency_ms"] = p90([d["latency_ms"] for d in details])
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR / "accuracy.json")
    add_dataset_flags(parser, "spider", "sql-eval")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data_dirs = {"spider_dir": dataset_dir_from_args(args, "spider"), "sql_eval_dir": dataset_dir_from_args(args, "sql-eval")}
    data = json.loads(args.results.read_text())
    suites = sorted({run["suite"] for run in data["runs"]})
    gold = GoldCache(database_config(suites, **data_dirs))
    questions = {suite: {q["id"]: q for q in suite_questions(suite, **data_dirs)} for suite in suites}
    for run in data["runs"]:
        path = detail_path(run, args.results.parent)
        if not path.exists():
            logger.warning("no details for %s; left as it was", path.name)
            continue
        details = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        changed = rescore_run(run, details, questions[run["suite"]], gold)
        path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in details))
        logger.info(
            "%s: %s %s, %d changed by re-running", path.name, run["rule"], run["correct_by_rule"], changed
        )
    args.results.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    from bench.bench_accuracy import render_table

    update_benchmarks_section("accuracy", render_table(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
