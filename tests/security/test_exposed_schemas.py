"""A database config exposes further schemas, system catalogues included, only when it names them; every other
qualifier stays refused. Live PostgreSQL, through the ingress's own schema resolver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from deployments.databases import DatabaseConfig
from deployments.schema_resolver import SchemaResolver
from tests.live_databases import PG_URL
from tests.security.conftest import unique
from text2sql.validation import validate_sql


@pytest.fixture(scope="module")
def schemas(pg_admin: sa.Engine) -> Iterator[tuple[str, str, str]]:
    main, sales, hidden = unique("main"), unique("sales"), unique("hidden")
    with pg_admin.begin() as c:
        for name in (main, sales, hidden):
            c.exec_driver_sql(f"CREATE SCHEMA {name}")
            c.exec_driver_sql(f"CREATE TABLE {name}.t (id int, name text)")
    yield main, sales, hidden
    with pg_admin.begin() as c:
        for name in (main, sales, hidden):
            c.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")


def resolved_schema(main: str, expose: list[str]):
    config = DatabaseConfig(
        url=f"{PG_URL}?options=-csearch_path%3D{main}", sample_values=0, expose_schemas=expose,
        allow_privileged_account=True,
    )
    return SchemaResolver({"db": config}).schema("db")


def codes(sql: str, schema) -> list[str]:
    return [issue.code for issue in validate_sql(sql, dialect="postgres", schema=schema).errors]


def test_only_the_default_schema_without_a_config(schemas: tuple[str, str, str]) -> None:
    main, sales, hidden = schemas
    schema = resolved_schema(main, [])
    assert codes(f"SELECT name FROM {main}.t", schema) == []
    assert codes(f"SELECT name FROM {sales}.t", schema) == ["forbidden_schema"]
    assert codes("SELECT table_name FROM information_schema.tables", schema) == ["forbidden_schema"]


def test_named_schemas_are_exposed_and_no_others(schemas: tuple[str, str, str]) -> None:
    main, sales, hidden = schemas
    schema = resolved_schema(main, [sales, "information_schema"])
    assert codes(f"SELECT s.name FROM {sales}.t AS s JOIN t ON t.id = s.id", schema) == []
    assert codes("SELECT table_name FROM information_schema.tables", schema) == []
    assert codes(f"SELECT name FROM {hidden}.t", schema) == ["forbidden_schema"]
    assert codes("SELECT * FROM pg_catalog.pg_authid", schema) == ["forbidden_schema"]
