"""Live databases for the security suite: a PostgreSQL schema (with tablefunc), a MariaDB database and a
SQLite file, each built fresh per test module and dropped afterwards.

Servers come from TEXT2SQL_TEST_PG_URL and TEXT2SQL_TEST_MYSQL_URL; one that cannot be reached skips its tests.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.live_databases import MYSQL_URL, MYSQL_URL_ENV, PG_URL, PG_URL_ENV, reachable_engine
from text2sql.execution import dispose_engines


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    """A superuser connection to the test PostgreSQL server (creates schemas, roles, extensions)."""
    engine = reachable_engine(PG_URL, PG_URL_ENV)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def mysql_admin() -> Iterator[sa.Engine]:
    """A root connection to the test MariaDB/MySQL server."""
    engine = reachable_engine(MYSQL_URL, MYSQL_URL_ENV)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module", autouse=True)
def _close_pools() -> Iterator[None]:
    yield
    dispose_engines()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    """A small SQLite database file with one table `t(id, name)` of 3 rows."""
    path = tmp_path / "guard.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b"), (3, "c")])
    return path
