"""Live database servers for introspection tests. A server that cannot be reached skips its tests.

URLs come from TEXT2SQL_TEST_PG_URL and TEXT2SQL_TEST_MYSQL_URL. Every test gets its own uniquely
named PostgreSQL schema or MySQL table prefix, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.live_databases import (
    DEFAULT_MYSQL_URL,
    DEFAULT_PG_URL,
    MYSQL_URL_ENV,
    PG_URL_ENV,
    reachable_engine,
)


@pytest.fixture(scope="session")
def pg_url() -> str:
    return os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)


@pytest.fixture(scope="session")
def mysql_url() -> str:
    return os.environ.get(MYSQL_URL_ENV, DEFAULT_MYSQL_URL)


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[sa.Engine]:
    engine = reachable_engine(pg_url, PG_URL_ENV)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def mysql_engine(mysql_url: str) -> Iterator[sa.Engine]:
    engine = reachable_engine(mysql_url, MYSQL_URL_ENV)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_schema(pg_engine: sa.Engine) -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped with everything in it after the test."""
    name = f"t2s_{uuid.uuid4().hex[:12]}"
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    yield name
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def mysql_prefix(mysql_engine: sa.Engine) -> Iterator[str]:
    """A unique table-name prefix; every table and view starting with it is dropped after the test."""
    prefix = f"t2s_{uuid.uuid4().hex[:12]}_"
    yield prefix
    with mysql_engine.begin() as connection:
        objects = connection.execute(
            sa.text(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name LIKE :pattern"
            ),
            {"pattern": prefix.replace("_", "\\_") + "%"},  # "_" is a LIKE wildcard
        ).fetchall()
        connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
        for name, kind in objects:
            connection.exec_driver_sql(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} `{name}`")
        connection.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
