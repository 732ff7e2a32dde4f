"""Load sql-eval's databases both ways and verify them (PostgreSQL at 127.0.0.1:5432, trust auth, user postgres):

    .venv/bin/python -m bench.sql_eval [--dsn postgresql://postgres@127.0.0.1:5432] [--cache-dir DIR] \\
        [--sql-eval-dir DIR]

It loads both, compares every table's rows between PostgreSQL and SQLite, runs every gold query (the first
alternative: the first statement, the first option of each ``{a,b}`` group) on its dialect's database, and
lists the queries that fail and those that return no rows.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from bench.paths import add_dataset_flags, dataset_dir_from_args
from bench.sql_eval.postgres import DEFAULT_DSN_BASE, load_postgres
from bench.sql_eval.sqlite_build import build_sqlite
from bench.sql_eval.verify import compare_data, compare_dialects, verify_gold_queries

logger = logging.getLogger("bench.sql_eval")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sql_eval", description="Load and verify sql-eval's databases and gold queries."
    )
    parser.add_argument(
        "--dsn", default=DEFAULT_DSN_BASE, help="PostgreSQL server URL (default: %(default)s)"
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="SQLite files (default: the data dir)")
    parser.add_argument("--force", action="store_true", help="reload and rebuild even when current")
    add_dataset_flags(parser, "sql-eval")
    args = parser.parse_args(argv)
    data_dir = dataset_dir_from_args(args, "sql-eval")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    status = 0

    started = time.monotonic()
    paths = build_sqlite(args.cache_dir, base_dir=data_dir, force=args.force)
    logger.info(
        "SQLite: %d files in %s (%.2fs)",
        len(paths),
        next(iter(paths.values())).parent,
        time.monotonic() - started,
    )
    started = time.monotonic()
    build_sqlite(args.cache_dir, base_dir=data_dir)
    logger.info("SQLite again (cached): %.3fs", time.monotonic() - started)

    pg_urls: dict[str, str] | None = None
    started = time.monotonic()
    try:
        pg_urls = load_postgres(args.dsn, base_dir=data_dir, force=args.force)
    except RuntimeError as e:
        logger.error("PostgreSQL: %s", e)
        status = 1
    if pg_urls is not None:
        logger.info("PostgreSQL: %d databases (%.2fs)", len(pg_urls), time.monotonic() - started)
        started = time.monotonic()
        load_postgres(args.dsn, base_dir=data_dir)
        logger.info("PostgreSQL again (already loaded): %.3fs", time.monotonic() - started)
        differences, load_time_cells = compare_data(pg_urls, paths)
        logger.info(
            "data parity PostgreSQL vs SQLite: %s (%d cells differ only by the load time)",
            "every table equal" if not differences else f"{len(differences)} tables DIFFER",
            load_time_cells,
        )
        for difference in differences:
            logger.warning("  %s", difference)
        if differences:
            status = 1

    targets: dict[str, dict[str, str] | None] = {
        "postgres": pg_urls,
        "sqlite": {name: f"sqlite:///{path}" for name, path in paths.items()},
    }
    for dialect, urls in targets.items():
        if urls is None:
            logger.info("%s: not verified (no database)", dialect)
            continue
        executed, failures, empty = verify_gold_queries(dialect, urls, base_dir=data_dir)  # type: ignore[arg-type]
        total = executed + len(failures)
        logger.info(
            "%s: %d/%d gold queries execute, %d fail, %d return no rows",
            dialect,
            executed,
            total,
            len(failures),
            len(empty),
        )
        for index, question, error in failures:
            logger.info(
                "  FAIL #%d (%s) %r: %s", index, question["db_name"], question["question"][:70], error
            )
        for index, question in empty:
            logger.info("  no rows #%d (%s) %r", index, question["db_name"], question["question"][:70])
    if pg_urls is not None:
        agree, disagreements, unpaired = compare_dialects(pg_urls, targets["sqlite"], base_dir=data_dir)  # type: ignore[arg-type]
        logger.info(
            "same question, both dialects' gold results: %d agree, %d differ, %d without a partner",
            agree,
            len(disagreements),
            unpaired,
        )
        for line in disagreements:
            logger.info("  %s", line)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
