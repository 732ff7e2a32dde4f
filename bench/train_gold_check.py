"""Judge the pipeline's no-model-call rewrites on Spider *train*'s gold queries.

    python -m bench.train_gold_check

A gold query is SQL a person wrote for the question, so a rewrite that changes it is suspect: each change is run
against the gold query on the train database, and the table counts how many gold queries each rewrite changes and
how many of those then return other rows. Train, not dev: the evaluation sets are never used to shape a rule.
Rewrites that read the question get the train question. Writes bench/results/train-gold-check.json and the
train-gold-check section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
from contextlib import closing
from functools import partial

from bench.paths import add_dataset_flags, dataset_dir_from_args
from bench.report import publish
from text2sql.pipeline.conflicting_filters import split_conflicting_filters
from text2sql.pipeline.join_bridges import bridge_joins
from text2sql.pipeline.literal_columns import relink_literals
from text2sql.pipeline.negated_joins import negate_across_joins
from text2sql.pipeline.shared_columns import qualify_shared_columns
from text2sql.pipeline.unused_joins import drop_unnamed_joins, drop_unused_joins
from text2sql.pipeline.value_probe import DatabaseProbe
from text2sql.schema.errors import SchemaError
from text2sql.schema.introspect import introspect

logger = logging.getLogger("train_gold_check")

# Each rewrite as made for one database URL and one question.
REWRITES = {
    "qualify_shared_columns": lambda url, question: qualify_shared_columns,
    "bridge_joins": lambda url, question: bridge_joins,
    "drop_unused_joins": lambda url, question: drop_unused_joins,
    "drop_unnamed_joins": lambda url, question: partial(drop_unnamed_joins, question=question),
    "relink_literals": lambda url, question: partial(relink_literals, probe=DatabaseProbe(url, "sqlite")),
    "negate_across_joins": lambda url, question: partial(negate_across_joins, question=question),
    "intersect_conflicting_filters": lambda url, question: split_conflicting_filters,
}
EXAMPLES = 3


def rows(path: str, sql: str) -> list[str] | None:
    """The rows `sql` returns, sorted, or None when SQLite refuses it."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        try:
            return sorted(map(repr, connection.execute(sql).fetchall()))
        except sqlite3.Error:
            return None


def check(train_dir) -> list[dict]:
    items = json.loads((train_dir / "train_spider.json").read_text())
    schemas: dict[str, object] = {}
    results = {name: {"rewrite": name, "gold_queries": 0, "changed": 0, "other_rows": 0, "examples": []} for name in REWRITES}
    for item in items:
        path = str(train_dir / "database" / item["db_id"] / f"{item['db_id']}.sqlite")
        url = f"sqlite:///{path}"
        if item["db_id"] not in schemas:
            try:
                schemas[item["db_id"]] = introspect(url)
            except SchemaError as e:
                logger.warning("skipped %s: %s", item["db_id"], e)
                schemas[item["db_id"]] = None
        schema = schemas[item["db_id"]]
        if schema is None:
            continue
        for name, make in REWRITES.items():
            result = results[name]
            result["gold_queries"] += 1
            rewritten = make(url, item["question"])(item["query"], dialect="sqlite", schema=schema)
            if rewritten is None:
                continue
            result["changed"] += 1
            if rows(path, rewritten[0]) != rows(path, item["query"]):
                result["other_rows"] += 1
                if len(result["examples"]) < EXAMPLES:
                    result["examples"].append({"question": item["question"], "gold": item["query"], "rewritten": rewritten[0]})
    return list(results.values())


def render(results: list[dict]) -> str:
    lines = [
        "Each no-model-call rewrite applied to Spider train's gold queries (`python -m bench.train_gold_check`): a "
        "change to a gold query is suspect. *Other rows*: the changed query returns other rows than the gold one "
        "(examples in bench/results/train-gold-check.json).",
        "",
        "| rewrite | gold queries | changed | other rows |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{r['rewrite']}` | {r['gold_queries']} | {r['changed']} | {r['other_rows']} |" for r in results]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_flags(parser, "spider")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train_dir = dataset_dir_from_args(args, "spider") / "train"
    results = check(train_dir)
    publish("train-gold-check", {"results": results}, render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
