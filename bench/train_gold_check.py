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
from bench.replay_fixes import ASKED, REWRITES
from bench.report import publish
from text2sql.schema.errors import SchemaError
from text2sql.schema.introspect import introspect

logger = logging.getLogger("train_gold_check")

# The rewrites judged, in the table's order, made as replay_fixes makes them (a follow-up's LIMIT rule needs a
# previous turn, which train questions lack).
CHECKED = (
    "qualify_shared_columns", "bridge_joins", "drop_unused_joins", "drop_unnamed_joins", "relink_literals",
    "negate_across_joins", "intersect_conflicting_filters", "name_unasked_keys",
    "drop_unasked_family_names",
)
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
    results = {name: {"rewrite": name, "gold_queries": 0, "changed": 0, "other_rows": 0, "examples": []} for name in CHECKED}
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
        for name in CHECKED:
            result = results[name]
            result["gold_queries"] += 1
            asked = ASKED[name]({"question": item["question"]}) if name in ASKED else {}
            rewrite = partial(REWRITES[name](url, "sqlite"), **asked)
            rewritten = rewrite(item["query"], dialect="sqlite", schema=schema)
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
