"""Real SQLite databases built per test, for the training data tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest


def build_shop(path: Path) -> Path:
    """customers(id, name, country) and orders(id, customer_id, total), a few rows each."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.executescript(
            """
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total REAL);
            INSERT INTO customers VALUES (1, 'Ada', 'UK'), (2, 'Grace', 'USA'), (3, 'Linus', NULL);
            INSERT INTO orders VALUES (1, 1, 9.5), (2, 1, 20.0), (3, 2, 7.25);
            """
        )
    connection.close()
    return path


@pytest.fixture
def shop_db(tmp_path: Path) -> Path:
    return build_shop(tmp_path / "shop.db")
