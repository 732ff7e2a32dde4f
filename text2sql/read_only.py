"""Open databases so that they cannot be written: where `execution` and `schema.introspect` get connections.

URLs are parsed, shown and scrubbed by `text2sql.db_urls`; this module turns one into a read-only connection.

- SQLite: the file through a ``file:`` URI with ``mode=ro`` (so it is never created), also when the URL is a
  ``uri=true`` URI asking for another mode, and ``PRAGMA query_only = ON``.
- PostgreSQL, MySQL and MariaDB: an engine on the driver this project uses (`db_urls.with_driver`) with a
  connect timeout. The server has no read-only login switch that survives a pool's session reset, so
  read-only is set per session or transaction with the statements `read_only_statements` returns.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from text2sql.db_urls import with_driver

CONNECT_TIMEOUT_S = 10
# Query keys SQLAlchemy's pysqlite reads itself rather than passing on inside a file: URI.
_PYSQLITE_ARGUMENTS = frozenset({"uri", "timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements"})


class SqliteFileMissing(Exception):
    """The SQLite URL names a file that does not exist (it is never created)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"SQLite database file not found: {str(path)!r}")
        self.path = path


def sqlite_read_only_uri(url: URL) -> str | None:
    """The ``file:`` URI that opens the URL's SQLite file read-only; None for a private in-memory database,
    where there is nothing to protect. SqliteFileMissing when a plain path names no file."""
    database = url.database or ""
    if str(url.query.get("uri", "")).lower() in ("true", "1"):
        # Already a file: URI; whatever mode it asks for, it gets "ro".
        params = {key: value for key, value in url.query.items() if key not in _PYSQLITE_ARGUMENTS}
        return f"{database}?{urlencode(params | {'mode': 'ro'}, doseq=True)}"
    if database in ("", ":memory:"):
        return None
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise SqliteFileMissing(path)
    return f"file:{quote(str(path))}?mode=ro"


def connect_sqlite(uri: str | None, *, timeout_s: float) -> sqlite3.Connection:
    """A connection on `uri` (from `sqlite_read_only_uri`; None: in memory) that refuses every write, in
    autocommit mode (no transaction held open between reads) and usable from any thread."""
    connection = sqlite3.connect(
        uri or ":memory:", uri=uri is not None, timeout=timeout_s, isolation_level=None, check_same_thread=False
    )
    try:
        connection.execute("PRAGMA query_only = ON")
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def create_engine(url: URL, *, pooled: bool, timeout_s: float = CONNECT_TIMEOUT_S) -> sa.Engine:
    """A SQLAlchemy engine on `url`. SQLite connections come from `connect_sqlite`; PostgreSQL and MySQL use
    the project's drivers, with a connect timeout unless the URL sets one. `pooled` keeps a few connections
    for reuse (execution, which resets each one it returns); otherwise every connection is closed after use."""
    pool: dict[str, Any] = (
        {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10} if pooled else {"poolclass": NullPool}
    )
    backend = url.get_backend_name()
    if backend == "sqlite":
        uri = sqlite_read_only_uri(url)
        return sa.create_engine("sqlite://", creator=lambda: connect_sqlite(uri, timeout_s=timeout_s), **pool)
    connect_args: dict[str, Any] = {}
    if backend in ("postgresql", "mysql", "mariadb") and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = int(timeout_s)
    if backend == "postgresql":
        # No automatic server-side prepared statements: a pooled connection is reset with DISCARD ALL.
        connect_args["prepare_threshold"] = None
    return sa.create_engine(with_driver(url), connect_args=connect_args, **pool)


def read_only_statements(
    dialect: Literal["postgresql", "mysql", "mariadb"], *, timeout_s: float, scope: Literal["session", "transaction"]
) -> list[str]:
    """The statements that make a PostgreSQL or MySQL/MariaDB connection read-only with a statement time limit,
    for the rest of the session or (PostgreSQL) for the current transaction only. MySQL's are always
    session-wide: DDL commits implicitly and would otherwise run in a new read-write transaction."""
    if dialect == "postgresql":
        if scope == "transaction":
            return ["SET TRANSACTION READ ONLY", f"SET LOCAL statement_timeout = {_milliseconds(timeout_s)}"]
        return [
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            f"SET statement_timeout = {_milliseconds(timeout_s)}",
        ]
    if dialect == "mariadb":
        limit = f"SET SESSION max_statement_time = {max(timeout_s, 0.001):.3f}"  # seconds; 0 = no limit
    else:
        limit = f"SET SESSION max_execution_time = {_milliseconds(timeout_s)}"
    return ["SET SESSION TRANSACTION READ ONLY", limit]


def _milliseconds(timeout_s: float) -> int:
    return max(1, int(timeout_s * 1000))  # 0 would mean no limit
