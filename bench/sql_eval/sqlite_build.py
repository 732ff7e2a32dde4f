"""One SQLite file per sql-eval dump (`build_sqlite`), transpiled with sqlglot and rebuilt only when out of date.

A dump's CREATE TABLE, INSERT (and the rows of ``COPY ... FROM stdin`` blocks, tab-separated text), CREATE INDEX,
and ``ALTER TABLE ... ADD CONSTRAINT`` folded into its CREATE TABLE are written for SQLite
(`bench.sql_eval.dump_plan`); pg_dump's housekeeping (SET, SELECT pg_catalog.*, OWNER TO, sequences, COMMENT,
GRANT, psql meta-commands) is skipped. Each file is built once, into a temporary file renamed into place under
a file lock.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from filelock import FileLock

from bench.sql_eval.dump_plan import DumpPlan, plan_dump
from bench.sql_eval.files import dump_paths
from bench.sql_eval.fingerprint import Fingerprint, fingerprint_of
from bench.sql_eval.sqlite_ddl import quote_identifier, sqlite_create_table

logger = logging.getLogger(__name__)

_LOCK_TIMEOUT_S = 600


def default_cache_dir() -> Path:
    from text2sql.chinook import default_data_dir

    return default_data_dir() / "sql-eval"


def build_sqlite(
    cache_dir: str | Path | None = None, *, base_dir: str | Path | None = None, force: bool = False
) -> dict[str, Path]:
    """``{db_name: path}`` of one SQLite file per dump in `cache_dir` (default: `default_cache_dir()`).

    A file is built when missing, when the dump (or this builder) changed, or, for dumps with relative dates,
    when it was built on an earlier day (see `bench.sql_eval.pg_constants`). PRAGMA application_id and user_version
    hold the fingerprint and the build day.
    """
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, dump in dump_paths(base_dir).items():
        target = directory / f"{name}.sqlite"
        fingerprint = fingerprint_of(dump)
        if force or not _sqlite_is_current(target, fingerprint):
            with FileLock(str(target) + ".lock", timeout=_LOCK_TIMEOUT_S):
                if force or not _sqlite_is_current(target, fingerprint):
                    _build_sqlite_file(dump, target, fingerprint)
        paths[name] = target
    return paths


def _application_id(fingerprint: Fingerprint) -> int:
    return int(fingerprint.sha256[:7], 16)  # 28 bits: fits PRAGMA application_id's signed 32-bit integer


def _sqlite_is_current(path: Path, fingerprint: Fingerprint) -> bool:
    if not path.is_file():
        return False
    try:
        connection = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
        try:
            application_id = connection.execute("PRAGMA application_id").fetchone()[0]
            built_on = connection.execute("PRAGMA user_version").fetchone()[0]
            (tables,) = connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    day = f"{built_on // 10000:04d}-{built_on // 100 % 100:02d}-{built_on % 100:02d}"
    return (
        application_id == _application_id(fingerprint)
        and tables == fingerprint.tables
        and fingerprint.current_on(day)
    )


def _build_sqlite_file(dump: Path, target: Path, fingerprint: Fingerprint) -> None:
    started = time.monotonic()
    now = dt.datetime.now(dt.timezone.utc)
    plan = plan_dump(dump, now)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(descriptor)
    try:
        connection = sqlite3.connect(temporary)
        try:
            for table in plan.tables.values():
                connection.execute(sqlite_create_table(table.create))
            for kind, payload in plan.steps:
                if kind == "rows":
                    table, columns, rows = payload
                    names = ", ".join(quote_identifier(c) for c in columns)
                    marks = ", ".join("?" for _ in columns)
                    connection.executemany(
                        f"INSERT INTO {quote_identifier(table.name)} ({names}) VALUES ({marks})", rows
                    )
                else:
                    connection.execute(payload)
            for index in plan.indexes:
                connection.execute(index)
            connection.execute(f"PRAGMA application_id = {_application_id(fingerprint)}")
            connection.execute(f"PRAGMA user_version = {int(now.date().strftime('%Y%m%d'))}")
            connection.commit()
            _verify_sqlite(connection, plan, dump)
        finally:
            connection.close()
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    finally:
        Path(temporary).unlink(missing_ok=True)
    logger.info(
        "built %s: %d tables, %d rows in %.2fs (skipped: %s)", target.name, len(plan.tables),
        sum(t.rows for t in plan.tables.values()), time.monotonic() - started, dict(plan.skipped) or "nothing",
    )  # fmt: skip


def _verify_sqlite(connection: sqlite3.Connection, plan: DumpPlan, dump: Path) -> None:
    for table in plan.tables.values():
        count = connection.execute(f"SELECT count(*) FROM {quote_identifier(table.name)}").fetchone()[0]
        if count != table.rows and not plan.deletes:
            raise RuntimeError(
                f"{dump.name}: {table.name} has {count} rows in SQLite, the dump has {table.rows}"
            )
