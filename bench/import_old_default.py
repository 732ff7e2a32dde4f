"""Bring the default pipeline's full-suite runs of an earlier commit into today's results, as the variant
`old-default`, so BENCHMARKS.md shows the plain prompt, the old default and today's default side by side.

    python -m bench.import_old_default --revision 192e014

The runs and their per-question answers are read from that commit with `git show` (nothing is asked of a model
again), and every answer is re-judged by today's rules (bench.rescore_accuracy), so the old default is scored the
way the new one is. Latencies are the ones measured then, on that commit's setup.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess

from bench.bench_accuracy import FULL_SUITES, GoldCache, database_config, detail_path, save, suite_questions
from bench.paths import REPO_ROOT, RESULTS_DIR, add_dataset_flags, dataset_dir_from_args
from bench.rescore_accuracy import rescore_run

logger = logging.getLogger("import_old_default")
VARIANT = "old-default"


def file_at(revision: str, path: str) -> str:
    """A committed file's text at `revision`."""
    return subprocess.run(
        ["git", "show", f"{revision}:{path}"], cwd=REPO_ROOT, check=True, capture_output=True, text=True
    ).stdout


def old_default_runs(revision: str) -> list[dict]:
    """The commit's default runs over whole suites (a sample is not the old default of a suite)."""
    runs = json.loads(file_at(revision, "bench/results/accuracy.json"))["runs"]
    return [r for r in runs if r["variant"] == "default" and FULL_SUITES.get(r["suite"]) == r["questions"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revision", required=True, help="the commit whose default runs are the old default")
    add_dataset_flags(parser, "spider", "sql-eval")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data_dirs = {"spider_dir": dataset_dir_from_args(args, "spider"), "sql_eval_dir": dataset_dir_from_args(args, "sql-eval")}
    runs = old_default_runs(args.revision)
    if not runs:
        raise SystemExit(f"{args.revision} has no default run over a whole suite")
    suites = sorted({run["suite"] for run in runs})
    gold = GoldCache(database_config(suites, **data_dirs))
    questions = {suite: {q["id"]: q for q in suite_questions(suite, **data_dirs)} for suite in suites}
    for run in runs:
        committed = detail_path(run).relative_to(REPO_ROOT).as_posix()
        details = [json.loads(line) for line in file_at(args.revision, committed).splitlines() if line.strip()]
        rescore_run(run, details, questions[run["suite"]], gold)
        run.update(variant=VARIANT, measured_at_revision=args.revision)
        path = detail_path(run)
        path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in details))
        save(run, RESULTS_DIR / "accuracy.json")
        logger.info("%s %s: %s by today's rules (%s)", run["model"], run["suite"], run["correct_by_rule"], args.revision)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
