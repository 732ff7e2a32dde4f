"""Join keys read from the data of a database that declares none (text2sql/schema/inferred_keys.py), on real
SQLite files: which keys the names and the data confirm, which they refuse, and how the app uses them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from deployments.databases import DatabaseConfig
from deployments.schema_resolver import SchemaResolver
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.schema.inferred_keys import infer_keys
from text2sql.schema.introspect import introspect
from text2sql.schema.render import render_ddl

SHOP = """
CREATE TABLE customers (id INTEGER, name TEXT, country TEXT);
CREATE TABLE orders (id INTEGER, customer_id INTEGER, total REAL);
CREATE TABLE order_items (order_id INTEGER, sku TEXT, quantity INTEGER);
CREATE TABLE author (aid INTEGER, name TEXT);
CREATE TABLE writes (aid INTEGER, pid INTEGER);
INSERT INTO customers VALUES (1, 'Ada', 'UK'), (2, 'Bo', 'SE'), (3, 'Cy', 'US');
INSERT INTO orders VALUES (10, 1, 5.0), (11, 1, 7.5), (12, 2, 3.0), (13, NULL, 1.0);
INSERT INTO order_items VALUES (10, 'a', 1), (10, 'b', 2), (12, 'a', 1);
INSERT INTO author VALUES (1, 'Ada'), (2, 'Bo');
INSERT INTO writes VALUES (1, 100), (2, 101), (1, 102);
"""


def database(tmp_path: Path, script: str, name: str = "db") -> str:
    path = tmp_path / f"{name}.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript(script)
    connection.close()
    return f"sqlite:///{path}"


def inferred(url: str) -> set[str]:
    return {key.relationship() for key in infer_keys(url, introspect(url, sample_values=0), "sqlite")}


def test_keys_named_by_table_or_by_a_shared_key_name_are_confirmed_by_the_data(tmp_path) -> None:
    assert inferred(database(tmp_path, SHOP)) == {
        "orders.customer_id -> customers.id",  # <table>_id against the table's id; a NULL is not an orphan
        "order_items.order_id -> orders.id",  # the singular of `orders`
        "writes.aid -> author.aid",  # the same key-like name, unique in author only
    }


def test_orphans_above_a_tenth_of_the_values_rule_a_key_out(tmp_path) -> None:
    url = database(tmp_path, SHOP + "INSERT INTO writes VALUES (7, 103), (8, 104);")  # 2 of 5 aids have no author
    assert "writes.aid -> author.aid" not in inferred(url)


def test_a_referenced_column_must_be_unique(tmp_path) -> None:
    url = database(tmp_path, SHOP + "INSERT INTO customers VALUES (1, 'Ada again', 'UK');")
    assert "orders.customer_id -> customers.id" not in inferred(url)


def test_what_the_names_or_types_do_not_say_is_never_a_key(tmp_path) -> None:
    url = database(tmp_path, """
        CREATE TABLE a (id INTEGER, name TEXT, code TEXT);
        CREATE TABLE b (id INTEGER, a_ref INTEGER, name TEXT);
        CREATE TABLE c (id INTEGER, code INTEGER);
        INSERT INTO a VALUES (1, 'x', '1'), (2, 'y', '2');
        INSERT INTO b VALUES (1, 1, 'x'), (2, 2, 'y');
        INSERT INTO c VALUES (1, 1), (2, 2);
    """)
    # `id` = `id` in every table, `name` is no key name, `a_ref` does not name `a` as a key, and `code` is text in a
    # and an integer in c: all agree in the data, none is a key.
    assert inferred(url) == set()


def test_two_tables_equally_referenced_or_a_one_to_one_pair_give_no_key(tmp_path) -> None:
    url = database(tmp_path, """
        CREATE TABLE people (pid INTEGER, name TEXT);
        CREATE TABLE staff (pid INTEGER, salary REAL);
        CREATE TABLE visits (pid INTEGER, day TEXT);
        INSERT INTO people VALUES (1, 'a'), (2, 'b');
        INSERT INTO staff VALUES (1, 10.0), (2, 20.0);
        INSERT INTO visits VALUES (1, 'mon'), (1, 'tue'), (2, 'mon');
    """)
    # people.pid and staff.pid are both unique and hold each other: which references which is not known, and
    # visits.pid could reference either.
    assert inferred(url) == set()


def test_the_app_infers_keys_only_for_a_database_that_declares_none(tmp_path) -> None:
    shop = database(tmp_path, SHOP, "shop")
    declared = database(tmp_path, SHOP.replace(
        "customer_id INTEGER,", "customer_id INTEGER REFERENCES customers(id),"
    ), "declared")
    resolver = SchemaResolver({
        "shop": DatabaseConfig(url=shop),
        "off": DatabaseConfig(url=shop, infer_relationships=False),
        "declared": DatabaseConfig(url=declared),
    })
    schema = resolver.schema("shop")
    assert "REFERENCES customers(id)" in render_ddl(schema) and "REFERENCES author(aid)" in render_ddl(schema)
    assert not any(table.foreign_keys for table in resolver.schema("off").tables)
    # A database with one declared key is taken at its word: the others are not guessed.
    assert [t.name for t in resolver.schema("declared").tables if t.foreign_keys] == ["orders"]


@pytest.mark.parametrize(("infer", "joined"), [(True, True), (False, False)])
def test_join_completion_follows_an_inferred_key(tmp_path, infer: bool, joined: bool) -> None:
    schema = SchemaResolver(
        {"shop": DatabaseConfig(url=database(tmp_path, SHOP), infer_relationships=infer)}
    ).schema("shop")
    outcome = check_candidate(
        "SELECT SUM(total) FROM orders WHERE country = 'UK'",
        dialects=Dialects("sqlite", "sqlite", "sqlite"), schema=schema, validate=True,
    )
    assert outcome.ok is joined, outcome.error
    if joined:
        assert outcome.answer_sql == (
            "SELECT SUM(total) FROM orders JOIN customers ON orders.customer_id = customers.id "
            "WHERE customers.country = 'UK'"
        )


def test_a_reload_of_the_same_tables_reuses_the_keys_and_a_changed_table_reads_them_again(tmp_path, monkeypatch) -> None:
    import deployments.schema_resolver as resolver_module

    scans: list[str] = []

    def counted(url, schema, dialect, **kwargs):
        scans.append(url)
        return infer_keys(url, schema, dialect, **kwargs)

    monkeypatch.setattr(resolver_module, "infer_keys", counted)
    url = database(tmp_path, SHOP)
    resolver = SchemaResolver({"shop": DatabaseConfig(url=url)})
    resolver.schema("shop")
    resolver.refresh("shop")
    assert resolver.schema("shop").table("orders").foreign_keys and len(scans) == 1
    with sqlite3.connect(tmp_path / "db.sqlite") as connection:
        connection.execute("ALTER TABLE orders ADD COLUMN note TEXT")
    connection.close()
    resolver.refresh("shop")
    assert resolver.schema("shop").table("orders").column("note") is not None and len(scans) == 2


def test_no_query_runs_past_the_budget_or_the_query_cap(tmp_path) -> None:
    url = database(tmp_path, SHOP)
    schema = introspect(url, sample_values=0)
    assert infer_keys(url, schema, "sqlite", budget_s=0) == []
    # A key takes three queries (the parent unique, the coverage, the child not unique): with two, none is known.
    assert infer_keys(url, schema, "sqlite", max_queries=2) == []
    assert len(infer_keys(url, schema, "sqlite", max_queries=400)) == 3
