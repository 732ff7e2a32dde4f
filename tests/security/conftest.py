"""Live databases for the security suite: a PostgreSQL schema (with tablefunc), a MariaDB database and a
SQLite file, each built fresh per test module and dropped afterwards.

Servers come from TEXT2SQL_TEST_PG_URL and TEXT2SQL_TEST_MYSQL_URL; one that cannot be reached skips its tests.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from text2sql.execution import dispose_engines

PG_URL = os.environ.get("TEXT2SQL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("TEXT2SQL_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def reachable(url: str, env_var: str) -> sa.Engine:
    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as e:
        engine.dispose()
        shown = make_url(url).render_as_string(hide_password=True)
        pytest.skip(f"no database server at {shown} ({type(getattr(e, 'orig', None) or e).__name__}); set {env_var}")
    return engine


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    """A superuser connection to the test PostgreSQL server (creates schemas, roles, extensions)."""
    engine = reachable(PG_URL, "TEXT2SQL_TEST_PG_URL")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def mysql_admin() -> Iterator[sa.Engine]:
    """A root connection to the test MariaDB/MySQL server."""
    engine = reachable(MYSQL_URL, "TEXT2SQL_TEST_MYSQL_URL")
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
