"""Check our Chinook follow-up conversations (`bench/data/chinook_conversations.jsonl`) against the Chinook SQLite file.

Run it from the repository root:

    .venv/bin/python -m bench.check_chinook_conversations
    .venv/bin/python -m bench.check_chinook_conversations -v --db /path/chinook.sqlite

Every line is ``{"id", "turns": [{"question", "sql", "order_matters"}, ...]}``: one conversation of 2 to 4
turns whose later questions are follow-ups ("only the ones from Canada", "what about 2010?", "just the top
5") that make sense only after the earlier turns. `python -m bench.bench_followups` measures them; they are a
benchmark and must never be used as training data.

The check fails (exit status 1, every problem listed) when:

- a line is not valid JSON, has missing/extra keys or wrong types, an empty question or SQL, or fewer than
  `MIN_TURNS` or more than `MAX_TURNS` turns; an id repeats;
- there are fewer than `MIN_CONVERSATIONS` conversations, or fewer than `MIN_PER_LENGTH` of some length;
- a turn fails any check of `bench/check_chinook_questions.py`, whose functions run it: one read-only
  statement in SQLite syntax, runs, returns rows (not only NULLs), ``order_matters`` true exactly when the
  query has a top-level ORDER BY, and no answer that depends on how the database breaks ties;
- a follow-up's gold answer is an earlier turn's answer again (same rows, and the same order when ordered):
  such a turn asks nothing new.

The database is opened read-only; the default is `text2sql.chinook.chinook_sqlite_path()`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.check_chinook_questions import (
    CheckReport,
    _check_one,
    _connect_read_only,
    parse_check_args,
    report_problems,
)
from bench.paths import DATA_DIR

logger = logging.getLogger("check_chinook_conversations")

DEFAULT_CONVERSATIONS = DATA_DIR / "chinook_conversations.jsonl"
MIN_CONVERSATIONS = 22
MIN_TURNS, MAX_TURNS = 2, 4
MIN_PER_LENGTH = 5
_KEYS = {"id": str, "turns": list}
_TURN_KEYS = {"question": str, "sql": str, "order_matters": bool}


@dataclass
class ConversationReport:
    conversations: int = 0
    by_length: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    # "<id>#<turn>" (turns counted from 1) -> rows the gold query returns
    row_counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def turn_id(conversation_id: str, index: int) -> str:
    """The id of a conversation's turn; `index` counts from 0, the id from 1."""
    return f"{conversation_id}#{index + 1}"


def load_conversations(path: str | Path = DEFAULT_CONVERSATIONS) -> tuple[list[dict[str, Any]], list[str]]:
    """The conversation records, and one problem string per line that is not a valid record."""
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"line {number}: not JSON ({e})")
            continue
        problem = _record_problem(record)
        if problem:
            label = record["id"] if isinstance(record, dict) and isinstance(record.get("id"), str) else "?"
            problems.append(f"line {number} ({label}): {problem}")
            continue
        records.append(record)
    return records, problems


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"expected an object, got {type(record).__name__}"
    if set(record) != set(_KEYS):
        return f"keys {sorted(record)} != {sorted(_KEYS)}"
    wrong = [k for k, kind in _KEYS.items() if not isinstance(record[k], kind)]
    if wrong:
        return f"wrong type for {wrong}"
    turns = record["turns"]
    if not MIN_TURNS <= len(turns) <= MAX_TURNS:
        return f"{len(turns)} turns (expected {MIN_TURNS} to {MAX_TURNS})"
    for number, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict) or set(turn) != set(_TURN_KEYS):
            return f"turn {number}: expected the keys {sorted(_TURN_KEYS)}"
        wrong = [k for k, kind in _TURN_KEYS.items() if not isinstance(turn[k], kind)]
        if wrong:
            return f"turn {number}: wrong type for {wrong}"
        if not turn["question"].strip() or not turn["sql"].strip():
            return f"turn {number}: empty question or sql"
    return None


def check_conversations(records: list[dict[str, Any]], db_path: str | Path) -> ConversationReport:
    """Run every check in the module docstring; never stops at the first problem."""
    report = ConversationReport(conversations=len(records))
    report.by_length.update({n: 0 for n in range(MIN_TURNS, MAX_TURNS + 1)})
    report.by_length.update(len(r["turns"]) for r in records)
    ids: Counter[str] = Counter(r["id"] for r in records)
    report.problems += [f"duplicate id {i!r}" for i, n in ids.items() if n > 1]
    if len(records) < MIN_CONVERSATIONS:
        report.problems.append(f"{len(records)} conversations in all (< {MIN_CONVERSATIONS})")
    for length, count in sorted(report.by_length.items()):
        if count < MIN_PER_LENGTH:
            report.problems.append(f"{count} conversations of {length} turns (< {MIN_PER_LENGTH})")

    connection = _connect_read_only(db_path)
    try:
        for record in records:
            report.problems += _check_conversation(connection, record, report)
    finally:
        connection.close()
    return report


def _check_conversation(
    connection: sqlite3.Connection, record: dict[str, Any], report: ConversationReport
) -> list[str]:
    problems = []
    answers: list[tuple[bool, list[tuple[Any, ...]]] | None] = []
    for index, turn in enumerate(record["turns"]):
        tid = turn_id(record["id"], index)
        # The single-question checks, unchanged: this turn is a question record of its own.
        turn_report = CheckReport(questions=1)
        problem = _check_one(connection, {"id": tid, **turn}, turn_report)
        report.row_counts.update(turn_report.row_counts)
        if problem:
            problems.append(f"{tid}: {problem}")
            answers.append(None)
            continue
        answer = _answer(connection, turn)
        for earlier, earlier_answer in enumerate(answers):
            if earlier_answer is not None and earlier_answer == answer:
                problems.append(f"{tid}: same answer as turn {earlier + 1}; a follow-up must ask something new")
        answers.append(answer)
    return problems


def _answer(connection: sqlite3.Connection, turn: dict[str, Any]) -> tuple[bool, list[tuple[Any, ...]]]:
    """The gold answer as it is scored: rows in order when the query orders, else as a multiset."""
    rows = connection.execute(turn["sql"]).fetchall()
    if turn["order_matters"]:
        return True, rows
    return False, sorted(rows, key=repr)


def main(argv: list[str] | None = None) -> int:
    args = parse_check_args(
        argv, description=__doc__.splitlines()[0], data_flag="--conversations", data_default=DEFAULT_CONVERSATIONS,
        row_counts_of="each turn's",
    )
    records, problems = load_conversations(args.conversations)
    report = check_conversations(records, args.db)
    report.problems[:0] = problems

    turns = sum(len(r["turns"]) for r in records)
    logger.info(
        "%d conversations (%d turns) in %s, checked against %s", report.conversations, turns, args.conversations,
        args.db,
    )
    for length, count in sorted(report.by_length.items()):
        logger.info("  %d turns: %3d conversations", length, count)
    if args.verbose:
        for record in records:
            counts = [report.row_counts.get(turn_id(record["id"], i), "-") for i in range(len(record["turns"]))]
            logger.info("  %-24s rows per turn: %s", record["id"], " / ".join(map(str, counts)))
    return report_problems(
        report.problems, ok_message="every gold query runs, returns rows, and each follow-up asks something new"
    )


if __name__ == "__main__":
    raise SystemExit(main())
