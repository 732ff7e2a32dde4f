"""Did a change alter any answer? Compare the SQL of two accuracy runs question by question.

    .venv/bin/python -m bench.compare_sql BEFORE.jsonl AFTER.jsonl

Each file is a per-question detail file that bench.bench_accuracy writes (bench/results/accuracy/*.jsonl).
Run both sides with the same --seed, so that repair rounds sample the same tokens. Prints how many questions
gave the same SQL, and every one that did not, with both answers; exits 1 when any differs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def load(path: Path) -> dict[str, dict]:
    return {record["id"]: record for record in map(json.loads, path.read_text().splitlines())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    before, after = load(args.before), load(args.after)
    shared = [qid for qid in before if qid in after]
    differing = [qid for qid in shared if before[qid]["sql"] != after[qid]["sql"]]
    print(f"{len(shared) - len(differing)}/{len(shared)} questions gave the same SQL")
    for qid in differing:
        print(f"\n{qid} (attempts {before[qid]['attempts']} -> {after[qid]['attempts']}, "
              f"correct {before[qid]['correct']} -> {after[qid]['correct']})")
        print(f"  before: {before[qid]['sql']}\n  after:  {after[qid]['sql']}")
        for side, record in (("before", before[qid]), ("after", after[qid])):
            if record.get("error"):
                print(f"  {side} error: {record['error']}")
    missing = sorted(set(before) ^ set(after))
    if missing:
        print(f"\nin one run only: {', '.join(missing)}")
    return 1 if differing or missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
