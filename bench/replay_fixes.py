"""Replay the pipeline's rewrites that need no model call on answers a benchmark run saved.

    python -m bench.replay_fixes [--runs qwen2.5-coder-0.5b__spider__default__486 ...]

A rewrite such as dropping an unread join, bridging a self-comparing join or moving a literal to the column that
holds it acts on the final SQL alone (and the database it runs on), so its effect can be judged on every saved
answer of a whole suite in seconds, with no model call and no noise from the model's sampling: each answer the
rewrite changes is run again, read-only, on its database (SQLite, or sql-eval's in the local PostgreSQL) and
judged by the suite's rule. Replay runs saved before the rewrite was switched on (their `finished_at` says when); a later
run has it applied already, and the replay finds nothing to change. Writes bench/results/replay-fixes.json and
the replay-fixes section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
from functools import partial

from bench.bench_accuracy import (
    GoldCache,
    database_config,
    resolve_url,
    score_result,
    suite_questions,
    suite_rule,
)
from bench.bench_followups import conversations, turn_question
from bench.check_chinook_conversations import turn_id
from bench.paths import RESULTS_DIR, add_dataset_flags, dataset_dir_from_args
from bench.report import publish
from text2sql.execution import ExecutionError, execute_read_only
from text2sql.pipeline.conflicting_filters import split_conflicting_filters
from text2sql.pipeline.family_names import drop_unasked_family_names
from text2sql.pipeline.join_bridges import bridge_joins
from text2sql.pipeline.key_names import name_unasked_keys
from text2sql.pipeline.literal_columns import relink_literals
from text2sql.pipeline.negated_joins import negate_across_joins
from text2sql.pipeline.shared_columns import qualify_shared_columns
from text2sql.pipeline.unasked_limits import drop_unasked_limit
from text2sql.pipeline.unused_joins import drop_unnamed_joins, drop_unused_joins
from text2sql.pipeline.value_probe import DatabaseProbe
from text2sql.schema.introspect import introspect

logger = logging.getLogger("replay_fixes")


def _asking(url: str, dialect: str):
    """relink_literals asks the question's own database which column holds a literal."""
    return partial(relink_literals, probe=DatabaseProbe(url, dialect))


# Each rewrite as made for one database (URL and dialect): most need only the schema.
REWRITES = {
    "bridge_joins": lambda url, dialect: bridge_joins,
    "drop_unused_joins": lambda url, dialect: drop_unused_joins,
    "drop_unnamed_joins": lambda url, dialect: drop_unnamed_joins,
    "relink_literals": _asking,
    "intersect_conflicting_filters": lambda url, dialect: split_conflicting_filters,
    "qualify_shared_columns": lambda url, dialect: qualify_shared_columns,
    "negate_across_joins": lambda url, dialect: negate_across_joins,
    "drop_unasked_limits": lambda url, dialect: drop_unasked_limit,
    "name_unasked_keys": lambda url, dialect: name_unasked_keys,
    "drop_unasked_family_names": lambda url, dialect: drop_unasked_family_names,
}
# Rewrites that read the question (and, in a follow-up, the previous turn's SQL) too.
ASKED = {
    "drop_unnamed_joins": lambda question: {"question": question["question"]},
    "negate_across_joins": lambda question: {"question": question["question"]},
    "name_unasked_keys": lambda question: {"question": question["question"]},
    "drop_unasked_family_names": lambda question: {"question": question["question"]},
    "drop_unasked_limits": lambda question: {
        "question": question["question"], "previous_sql": question.get("previous_sql"),
    },
}
FOLLOWUP_MODES = ("edit", "history")
# Rewrites of statements the database refused: replayed on refused final answers too (the others act on valid,
# running statements, and refused answers are skipped for them).
ON_REFUSED = {"qualify_shared_columns"}
# Default runs over whole suites (and the Chinese sample): a rewrite that was on when one ran finds nothing.
DEFAULT_RUNS = (
    "qwen2.5-coder-0.5b__spider__default__486",
    "qwen2.5-coder-1.5b__spider__default__486",
    "qwen2.5-coder-0.5b__sqleval-sqlite__default__100",
    "qwen2.5-coder-1.5b__sqleval-sqlite__default__100",
    "qwen2.5-coder-0.5b__sqleval-postgres__default__100",
    "qwen2.5-coder-1.5b__sqleval-postgres__default__100",
    "qwen2.5-coder-0.5b__chinook__drop-joins__75",
    "qwen2.5-coder-1.5b__chinook__drop-joins__75",
    "qwen2.5-coder-0.5b__spider-zh__default__200",
    "qwen2.5-coder-1.5b__spider-zh__default__200",
)


def replay(
    details: list[dict], questions: dict[str, dict], gold: GoldCache, suite: str, rewrite_for, *, refused: bool = False,
    asked_for=None,
) -> dict:
    """How many answers the rewrite (`rewrite_for(url, dialect)`) changes, and how many of those turn right or
    wrong. The schema is the one the database declares: keys the server reads from a database's data
    (`infer_relationships`) are not there, so the join rewrites find less to do on sql-eval than served."""
    changed, right, wrong, schemas, rewrites = [], 0, 0, {}, {}
    for detail in details:
        if detail.get("status") != 200 or (detail.get("error") and not refused) or not detail.get("sql"):
            continue
        question = questions[detail["id"]]
        url = resolve_url(gold.databases[question["database"]])
        schema = schemas.setdefault(url, introspect(url))
        rewrite = rewrites.setdefault(url, rewrite_for(url, question["dialect"]))
        asked = asked_for(question) if asked_for else {}
        rewritten = rewrite(detail["sql"], dialect=question["dialect"], schema=schema, **asked)
        if rewritten is None:
            continue
        try:
            result = execute_read_only(url, rewritten[0], max_rows=20000, timeout_s=20)
            correct = score_result(question, result, gold)[suite_rule(suite)]
        except ExecutionError:
            correct = False
        right += correct and not detail["correct"]
        wrong += detail["correct"] and not correct
        changed.append(
            {"id": detail["id"], "before": detail["sql"], "after": rewritten[0], "correct": correct}
        )
    return {
        "answers": len(details),
        "changed": len(changed),
        "now_right": right,
        "now_wrong": wrong,
        "answers_changed": changed,
    }


def replay_followups(rewrites: list[str]) -> list[dict]:
    """The rewrites on the follow-up benchmark's saved answers (`bench/results/followups/<model>.jsonl`), per model
    and mode: each follow-up with its previous turn's gold SQL, which is the history the benchmark sent."""
    questions = {}
    for conversation in conversations():
        for index in range(1, len(conversation["turns"])):
            questions[turn_id(conversation["id"], index)] = turn_question(conversation, index) | {
                "previous_sql": conversation["turns"][index - 1]["sql"],
            }
    gold = GoldCache(database_config(["chinook"]))
    finished = {run["model"]: run.get("finished_at", "-") for run in json.loads((RESULTS_DIR / "followups.json").read_text())["runs"]}
    results = []
    for path in sorted((RESULTS_DIR / "followups").glob("*.jsonl")):
        answers = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for mode in FOLLOWUP_MODES:
            details = [a for a in answers if a["mode"] == mode and a["id"] in questions]
            if not details:
                continue
            name = f"followups__{path.stem}__{mode}__{len(details)}"
            for rewrite in rewrites:
                outcome = replay(
                    details, questions, gold, "chinook", REWRITES[rewrite], refused=rewrite in ON_REFUSED,
                    asked_for=ASKED.get(rewrite),
                )
                logger.info("%s %s: %d changed, %d now right, %d now wrong", name, rewrite, outcome["changed"],
                            outcome["now_right"], outcome["now_wrong"])
                results.append({"run": name, "finished_at": finished.get(path.stem, "-"), "rewrite": rewrite, **outcome})
    return results


def render(results: list[dict]) -> str:
    lines = [
        "Rewrites that need no model call, replayed on saved final answers (`python -m bench.replay_fixes`): each "
        "changed answer run again and judged by the suite's rule.",
        "",
        "| run | saved | rewrite | answers | changed | now right | now wrong |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['run']} | {r['finished_at']} | `{r['rewrite']}` | {r['answers']} | {r['changed']} | {r['now_right']} | "
        f"{r['now_wrong']} |"
        for r in results
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", nargs="+", default=list(DEFAULT_RUNS), help="saved runs, <model>__<suite>__<variant>__<n>"
    )
    parser.add_argument(
        "--rewrites", nargs="+", choices=sorted(REWRITES), default=list(REWRITES),
        help="replay only these; the saved results of the others are kept",
    )
    parser.add_argument(
        "--followups", action="store_true",
        help="also replay the follow-up benchmark's saved answers (bench_followups, modes: edit, history)",
    )
    add_dataset_flags(parser, "spider", "sql-eval")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data_dirs = {
        "spider_dir": dataset_dir_from_args(args, "spider"),
        "sql_eval_dir": dataset_dir_from_args(args, "sql-eval"),
    }
    saved = json.loads((RESULTS_DIR / "accuracy.json").read_text())["runs"]
    saved_results = RESULTS_DIR / "replay-fixes.json"
    kept = json.loads(saved_results.read_text())["results"] if saved_results.exists() else []
    # What this call replays replaces its earlier result; every other run and rewrite keeps its own.
    replayed = set(args.runs) | ({r["run"] for r in kept if r["run"].startswith("followups__")} if args.followups else set())
    results = [r for r in kept if r["rewrite"] not in args.rewrites or r["run"] not in replayed]
    for name in args.runs:
        model, suite, variant, count = name.split("__")
        run = next(
            r
            for r in saved
            if (r["model"], r["suite"], r["variant"], str(r["questions"])) == (model, suite, variant, count)
        )
        details = [
            json.loads(line)
            for line in (RESULTS_DIR / "accuracy" / f"{name}.jsonl").read_text().splitlines()
            if line.strip()
        ]
        gold = GoldCache(database_config([suite], **data_dirs))
        questions = {q["id"]: q for q in suite_questions(suite, **data_dirs)}
        for rewrite in args.rewrites:
            outcome = replay(
                details, questions, gold, suite, REWRITES[rewrite], refused=rewrite in ON_REFUSED,
                asked_for=ASKED.get(rewrite),
            )
            logger.info(
                "%s %s: %d changed, %d now right, %d now wrong",
                name,
                rewrite,
                outcome["changed"],
                outcome["now_right"],
                outcome["now_wrong"],
            )
            results.append(
                {"run": name, "finished_at": run.get("finished_at", "-"), "rewrite": rewrite, **outcome}
            )
    if args.followups:
        results += replay_followups(args.rewrites)
    runs, rewrites = list(DEFAULT_RUNS), list(REWRITES)
    results.sort(key=lambda r: (runs.index(r["run"]) if r["run"] in runs else len(runs), r["run"], rewrites.index(r["rewrite"])))
    publish("replay-fixes", {"results": results}, render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
