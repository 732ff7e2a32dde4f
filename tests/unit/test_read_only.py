"""text2sql.read_only on real SQLite files: every way in is read-only, and a missing file is never created."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from text2sql.db_urls import parse_url
from text2sql.read_only import (
    SqliteFileMissing,
    connect_sqlite,
    create_engine,
    read_only_statements,
    sqlite_read_only_uri,
)


@pytest.fixture()
def db_file(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT)")
        connection.execute("INSERT INTO items VALUES (1, 'pen')")
    return path


@pytest.mark.parametrize("query", ["", "?mode=rw&uri=true", "?mode=rwc&uri=true"])
def test_sqlite_connections_read_but_never_write(db_file: Path, query: str) -> None:
    url = parse_url(f"sqlite:///{'file:' if query else ''}{db_file}{query}")
    connection = connect_sqlite(sqlite_read_only_uri(url), timeout_s=1)
    try:
        assert connection.execute("SELECT label FROM items").fetchall() == [("pen",)]
        with pytest.raises(sqlite3.OperationalError, match="readonly|read-only"):
            connection.execute("INSERT INTO items VALUES (2, 'ink')")
    finally:
        connection.close()


def test_sqlite_engine_is_read_only_too(db_file: Path) -> None:
    engine = create_engine(parse_url(f"sqlite:///{db_file}"), pooled=False)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM items").scalar() == 1
            with pytest.raises(sa.exc.OperationalError, match="readonly|read-only"):
                connection.exec_driver_sql("DELETE FROM items")
    finally:
        engine.dispose()


def test_missing_sqlite_file_is_never_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(SqliteFileMissing, match="not found") as caught:
        sqlite_read_only_uri(parse_url(f"sqlite:///{missing}"))
    assert caught.value.path == missing
    # A URI asking to create it is opened read-only: the open fails instead.
    with pytest.raises(sqlite3.OperationalError):
        connect_sqlite(sqlite_read_only_uri(parse_url(f"sqlite:///file:{missing}?mode=rwc&uri=true")), timeout_s=1)
    assert not missing.exists()


def test_in_memory_sqlite_has_no_file_to_protect() -> None:
    assert sqlite_read_only_uri(parse_url("sqlite://")) is None


def test_server_statements_per_dialect() -> None:
    assert read_only_statements("postgresql", timeout_s=2.5, scope="transaction") == [
        "SET TRANSACTION READ ONLY", "SET LOCAL statement_timeout = 2500",
    ]  # fmt: skip
    assert read_only_statements("postgresql", timeout_s=10, scope="session")[0] == (
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
    )
    assert read_only_statements("mariadb", timeout_s=0.5, scope="session") == [
        "SET SESSION TRANSACTION READ ONLY", "SET SESSION max_statement_time = 0.500",
    ]  # fmt: skip
    assert read_only_statements("mysql", timeout_s=0.0001, scope="session")[1] == "SET SESSION max_execution_time = 1"
