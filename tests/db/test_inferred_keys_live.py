"""Join keys read from the data on the real servers: the checks run as each dialect's SQL, with mixed-case names
quoted on PostgreSQL and case-kept table names on MariaDB."""

from __future__ import annotations

import sqlalchemy as sa

from text2sql.schema.inferred_keys import infer_keys
from text2sql.schema.introspect import introspect


def test_postgres_keys_between_mixed_case_tables(pg_engine: sa.Engine, pg_schema: str, pg_url: str) -> None:
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(f'SET search_path TO "{pg_schema}"')
        connection.exec_driver_sql('CREATE TABLE "Customer" ("CustomerId" bigint, "FirstName" text)')
        connection.exec_driver_sql('CREATE TABLE "Invoice" ("InvoiceId" int, "CustomerId" int, "Total" numeric)')
        # A text column named like a key, against an integer one: never compared (PostgreSQL would refuse).
        connection.exec_driver_sql('CREATE TABLE "Note" ("CustomerId" text, body text)')
        connection.exec_driver_sql("""INSERT INTO "Customer" VALUES (1, 'Ann'), (2, 'Bo')""")
        connection.exec_driver_sql('INSERT INTO "Invoice" VALUES (1, 1, 9.5), (2, 1, 0.5), (3, 2, 4)')
        connection.exec_driver_sql("""INSERT INTO "Note" VALUES ('1', 'x')""")
    url = f"{pg_url}?options=-csearch_path%3D{pg_schema}"
    keys = infer_keys(url, introspect(url, schema_name=pg_schema, sample_values=0), "postgres")
    assert [key.relationship() for key in keys] == ["Invoice.CustomerId -> Customer.CustomerId"]


def test_mariadb_keys_by_a_shared_key_name(mysql_engine: sa.Engine, mysql_prefix: str, mysql_url: str) -> None:
    author, writes = f"{mysql_prefix}Author", f"{mysql_prefix}writes"
    with mysql_engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE `{author}` (aid INT, name TEXT)")
        connection.exec_driver_sql(f"CREATE TABLE `{writes}` (aid INT, pid INT)")
        connection.exec_driver_sql(f"INSERT INTO `{author}` VALUES (1, 'Ada'), (2, 'Bo')")
        # One orphan in ten is within the tolerance of a dump cut short.
        rows = ", ".join(f"({1 + i % 2}, {100 + i})" for i in range(9)) + ", (9, 200)"
        connection.exec_driver_sql(f"INSERT INTO `{writes}` VALUES {rows}")
    schema = introspect(mysql_url, include_tables=[author, writes], sample_values=0)
    keys = infer_keys(mysql_url, schema, "mysql")
    assert [key.relationship() for key in keys] == [f"{writes}.aid -> {author}.aid"]
