"""Is the loaded data sound? PostgreSQL and SQLite hold the same rows, every gold query runs, and the two dialects'
gold queries for one question give the same answer."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import make_url

from bench.sql_eval.files import Dialect, first_gold_alternative, load_questions
from bench.sql_eval.pg_values import pg_text
from bench.sql_eval.postgres import conninfo, password_kwargs
from bench.sql_eval.sqlite_ddl import quote_identifier


def _normalise_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float, Decimal)):
        number = float(value)
        return int(number) if number.is_integer() else round(number, 6)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return pg_text(
            value.astimezone(dt.timezone.utc).replace(tzinfo=None)
            if isinstance(value, dt.datetime) and value.tzinfo
            else value
        )
    return value


# Rows computed from "now" differ by the seconds between the PostgreSQL load and the SQLite build.
_LOAD_TIME_TOLERANCE = dt.timedelta(minutes=10)


def _same_cell(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, str) and isinstance(b, str):
        try:
            return abs(dt.datetime.fromisoformat(a) - dt.datetime.fromisoformat(b)) <= _LOAD_TIME_TOLERANCE
        except ValueError:
            return False
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and min(abs(a), abs(b)) > 1e12:  # epoch milliseconds
        return abs(a - b) <= _LOAD_TIME_TOLERANCE.total_seconds() * 1000
    return False


def _sort_key(row: tuple[Any, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((type(v).__name__, str(v)) for v in row)


def compare_data(pg_urls: dict[str, str], sqlite_paths: dict[str, Path]) -> tuple[list[str], int]:
    """Tables whose rows differ between each PostgreSQL database and its SQLite file, and the number of cells
    that differ only by the load time (timestamps or epoch milliseconds less than 10 minutes apart)."""
    import psycopg

    differences, load_time_cells = [], 0
    for name, url in pg_urls.items():
        parsed = make_url(url)
        lite = sqlite3.connect(f"file:{quote(str(sqlite_paths[name]))}?mode=ro", uri=True)
        lite_tables = {
            r[0].lower() for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        with psycopg.connect(conninfo(parsed, parsed.database), **password_kwargs(parsed)) as pg:
            tables = [
                r[0]
                for r in pg.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                    "AND table_type = 'BASE TABLE' ORDER BY 1"
                )
            ]
            if {t.lower() for t in tables} != lite_tables:
                differences.append(f"{name}: tables differ: {sorted(tables)} vs {sorted(lite_tables)}")
                continue
            for table in tables:
                columns = [
                    r[0]
                    for r in pg.execute(
                        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                        "AND table_name = %s ORDER BY ordinal_position",
                        (table,),
                    )
                ]
                query = (
                    f"SELECT {', '.join(quote_identifier(c) for c in columns)} FROM {quote_identifier(table)}"
                )
                pg_rows = sorted((tuple(map(_normalise_cell, r)) for r in pg.execute(query)), key=_sort_key)
                lite_rows = sorted(
                    (tuple(map(_normalise_cell, r)) for r in lite.execute(query)), key=_sort_key
                )
                if len(pg_rows) != len(lite_rows):
                    differences.append(
                        f"{name}.{table}: {len(pg_rows)} rows in PostgreSQL, {len(lite_rows)} in SQLite"
                    )
                    continue
                for pg_row, lite_row in zip(pg_rows, lite_rows, strict=True):
                    if not all(_same_cell(a, b) for a, b in zip(pg_row, lite_row, strict=True)):
                        differences.append(f"{name}.{table}: PostgreSQL {pg_row} vs SQLite {lite_row}")
                        break
                    load_time_cells += sum(a != b for a, b in zip(pg_row, lite_row, strict=True))
        lite.close()
    return differences, load_time_cells


def verify_gold_queries(
    dialect: Dialect, urls: dict[str, str], *, base_dir: str | Path | None = None
) -> tuple[int, list[tuple[int, dict[str, str], str]], list[tuple[int, dict[str, str]]]]:
    """Run each question's first gold alternative on its database.

    Returns (executed, failures [(index, question, error)], empty results [(index, question)]).
    """
    from text2sql.execution import ExecutionError, execute_read_only

    executed, failures, empty = 0, [], []
    for index, question in enumerate(load_questions(dialect, base_dir=base_dir)):
        try:
            sql = first_gold_alternative(question["query"])
            result = execute_read_only(urls[question["db_name"]], sql, max_rows=10_000, timeout_s=30)
        except (ExecutionError, ValueError) as e:
            failures.append((index, question, f"{type(e).__name__}: {e}"))
            continue
        executed += 1
        if result.row_count == 0:
            empty.append((index, question))
    return executed, failures, empty


def compare_dialects(
    pg_urls: dict[str, str], sqlite_urls: dict[str, str], *, base_dir: str | Path | None = None
) -> tuple[int, list[str], int]:
    """Do the two dialects' gold queries for the same question (same db and wording) give the same result?

    Uses `text2sql.accuracy.results_match`, order-sensitive when the PostgreSQL gold orders. Returns
    (questions that agree, one line per question that does not, questions without a partner).
    """
    from text2sql.accuracy import gold_orders, results_match
    from text2sql.execution import ExecutionError, execute_read_only

    lite_questions = {(q["db_name"], q["question"]): q for q in load_questions("sqlite", base_dir=base_dir)}
    agree, disagreements, unpaired = 0, [], 0
    for index, pg_question in enumerate(load_questions("postgres", base_dir=base_dir)):
        db = pg_question["db_name"]
        lite_question = lite_questions.get((db, pg_question["question"]))
        if lite_question is None:
            unpaired += 1
            continue
        try:
            pg_result = execute_read_only(
                pg_urls[db], first_gold_alternative(pg_question["query"]), max_rows=10_000
            )
            lite_result = execute_read_only(
                sqlite_urls[db], first_gold_alternative(lite_question["query"]), max_rows=10_000
            )
        except (ExecutionError, ValueError) as e:
            disagreements.append(f"#{index} ({db}): cannot compare: {e}")
            continue
        if results_match(pg_result, lite_result, order_matters=gold_orders(pg_question["query"], "postgres")):
            agree += 1
        else:
            disagreements.append(
                f"#{index} ({db}, {pg_question['query_category']}) {pg_question['question'][:70]!r}: "
                f"postgres {pg_result.rows[:2]} vs sqlite {lite_result.rows[:2]}"
            )
    return agree, disagreements, unpaired
