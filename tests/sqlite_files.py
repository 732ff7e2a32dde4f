"""Small real SQLite files for the tests that check fixed SQL by running it."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path


def sqlite_database(path: Path, script: str) -> str:
    """A SQLite file at `path` built by `script` (DDL and rows); its URL."""
    with closing(sqlite3.connect(path)) as connection:
        connection.executescript(script)
        connection.commit()
    return f"sqlite:///{path}"


def sorted_rows(url: str, sql: str) -> list[tuple]:
    """What `sql` returns on the database at `url`, read-only, as sorted tuples."""
    from text2sql.execution import execute_read_only

    return sorted(tuple(row) for row in execute_read_only(url, sql, max_rows=100, timeout_s=5).rows)
