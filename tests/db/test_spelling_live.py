"""Names the validator accepts whatever their case are spelled so the real database finds them: PostgreSQL folds
unquoted names to lower case, and MariaDB on Linux compares table names with case. Without the respelling,
every query below fails on the server ("relation "customer" does not exist", "Table ... doesn't exist").
The rewrites that need no model run here too: literals relinked by probes the server answers (its own quoting and
collation), one column's two values intersected, a negation across a one-to-many join made NOT EXISTS, and a
column shared by two joined tables qualified (the server refuses it as ambiguous)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from text2sql.execution import ExecutionError, execute_read_only
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.rewrites import Asked
from text2sql.pipeline.spelling import respell_identifiers
from text2sql.schema.introspect import introspect

POSTGRES = Dialects(generation="postgres", answer="postgres", execution="postgres")
MYSQL = Dialects(generation="mysql", answer="mysql", execution="mysql")


@pytest.fixture
def pg_shop(pg_engine: sa.Engine, pg_schema: str, pg_url: str) -> str:
    """Tables and columns created quoted in mixed case (as Prisma and Entity Framework create them)."""
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(f'SET search_path TO "{pg_schema}"')
        connection.exec_driver_sql('CREATE TABLE "Customer" ("CustomerId" int PRIMARY KEY, "FirstName" text, country text)')
        connection.exec_driver_sql(
            'CREATE TABLE "Invoice" ("InvoiceId" int PRIMARY KEY, '
            '"CustomerId" int REFERENCES "Customer"("CustomerId"), "Total" numeric)'
        )
        connection.exec_driver_sql("""INSERT INTO "Customer" VALUES (1, 'Ann', 'CA'), (2, 'Bo', 'US')""")
        connection.exec_driver_sql('INSERT INTO "Invoice" VALUES (1, 1, 9.5), (2, 1, 0.5), (3, 2, 4)')
    return f"{pg_url}?options=-csearch_path%3D{pg_schema}"


def pg_check(sql: str, url: str, schema_name: str, question: str | None = None):
    schema = introspect(url, schema_name=schema_name)
    target = ExecutionTarget(url=url, dialect="postgres", max_rows=10, timeout_s=5)
    return check_candidate(sql, dialects=POSTGRES, schema=schema, validate=True, target=target, asked=Asked(question=question))


def mysql_check(sql: str, url: str, table: str):
    schema = introspect(url, include_tables=[table])
    target = ExecutionTarget(url=url, dialect="mysql", max_rows=10, timeout_s=5)
    return check_candidate(sql, dialects=MYSQL, schema=schema, validate=True, target=target)


def test_the_server_misses_mixed_case_names_written_unquoted(pg_shop: str) -> None:
    with pytest.raises(ExecutionError, match="does not exist"):
        execute_read_only(pg_shop, "SELECT FirstName FROM Customer", max_rows=10, timeout_s=5)


def test_postgres_mixed_case_names_are_quoted_as_the_schema_spells_them(pg_shop: str, pg_schema: str) -> None:
    outcome = pg_check(
        "SELECT c.FirstName, SUM(i.Total) AS Total FROM Customer c JOIN invoice i ON c.CustomerId = i.customerid "
        "WHERE c.country = 'CA' GROUP BY c.FirstName ORDER BY Total DESC",
        pg_shop, pg_schema,
    )
    assert outcome.ok, outcome.error
    assert [tuple(r) for r in outcome.result.rows] == [("Ann", 10.0)]
    assert outcome.answer_sql == (
        'SELECT c."FirstName", SUM(i."Total") AS Total FROM "Customer" AS c JOIN "Invoice" AS i '
        "ON c.\"CustomerId\" = i.\"CustomerId\" WHERE c.country = 'CA' GROUP BY c.\"FirstName\" ORDER BY Total DESC"
    )
    assert 'invoice -> "Invoice" (as the database spells it)' in outcome.fixes


def test_a_joined_table_added_by_the_fixer_is_quoted_too(pg_shop: str, pg_schema: str) -> None:
    outcome = pg_check('SELECT "FirstName", SUM("Total") FROM "Customer" GROUP BY 1 ORDER BY 2 DESC', pg_shop, pg_schema)
    assert outcome.ok, outcome.error
    assert [tuple(r) for r in outcome.result.rows] == [("Ann", 10.0), ("Bo", 4.0)]


def test_a_table_qualifier_is_spelled_as_its_table(pg_shop: str, pg_schema: str) -> None:
    outcome = pg_check("SELECT customer.FirstName FROM Customer WHERE Customer.CustomerId = 2", pg_shop, pg_schema)
    assert outcome.ok, outcome.error
    assert [tuple(r) for r in outcome.result.rows] == [("Bo",)]


def test_subquery_and_alias_names_are_left_as_written(pg_shop: str, pg_schema: str) -> None:
    outcome = pg_check(
        "SELECT t.Total FROM (SELECT SUM(Total) AS Total FROM Invoice) AS t", pg_shop, pg_schema
    )
    assert outcome.ok, outcome.error
    assert outcome.answer_sql == 'SELECT t.Total FROM (SELECT SUM("Total") AS Total FROM "Invoice") AS t'
    assert [tuple(r) for r in outcome.result.rows] == [(14.0,)]


def test_mariadb_table_names_keep_their_case(mysql_engine: sa.Engine, mysql_prefix: str, mysql_url: str) -> None:
    table = f"{mysql_prefix}Customer"
    with mysql_engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE `{table}` (CustomerId INT PRIMARY KEY, FirstName TEXT)")
        connection.exec_driver_sql(f"INSERT INTO `{table}` VALUES (1, 'Ann')")
    with mysql_engine.connect() as connection:
        case_sensitive = connection.exec_driver_sql("SELECT @@lower_case_table_names").scalar() == 0
    written = f"SELECT firstname FROM {table.lower()} WHERE customerid = 1"
    if case_sensitive:
        with pytest.raises(ExecutionError):
            execute_read_only(mysql_url, written, max_rows=10, timeout_s=5)
    outcome = mysql_check(written, mysql_url, table)
    assert outcome.ok, outcome.error
    assert [tuple(r) for r in outcome.result.rows] == [("Ann",)]
    assert outcome.answer_sql == f"SELECT firstname FROM {table} WHERE customerid = 1"


def test_case_insensitive_databases_are_left_alone(pg_shop: str, pg_schema: str) -> None:
    schema = introspect(pg_shop, schema_name=pg_schema)
    assert respell_identifiers("SELECT FirstName FROM customer", dialect="sqlite", schema=schema) is None
    assert respell_identifiers("SELECT country FROM \"Customer\"", dialect="postgres", schema=schema) is None


def test_a_qualified_column_beside_a_subquery_is_spelled_too(pg_shop: str, pg_schema: str) -> None:
    outcome = pg_check(
        "SELECT c.FirstName, t.n FROM Customer AS c JOIN (SELECT CustomerId AS cid, COUNT(*) AS n FROM Invoice "
        "GROUP BY CustomerId) AS t ON t.cid = c.CustomerId ORDER BY t.n DESC",
        pg_shop, pg_schema,
    )
    assert outcome.ok, outcome.error
    assert [tuple(r) for r in outcome.result.rows] == [("Ann", 2), ("Bo", 1)]


def test_a_table_bridged_into_a_join_is_quoted_too(pg_shop: str, pg_engine: sa.Engine, pg_schema: str) -> None:
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(f'SET search_path TO "{pg_schema}"')
        connection.exec_driver_sql(
            'CREATE TABLE "InvoiceLine" ("LineId" int PRIMARY KEY, '
            '"InvoiceId" int REFERENCES "Invoice"("InvoiceId"), "Quantity" int)'
        )
        connection.exec_driver_sql('INSERT INTO "InvoiceLine" VALUES (1, 1, 3), (2, 3, 1)')
    # Customer and InvoiceLine share no key: the self-comparison is bridged over "Invoice", which must be quoted.
    outcome = pg_check(
        "SELECT DISTINCT c.FirstName FROM Customer c JOIN InvoiceLine l ON c.CustomerId = c.CustomerId "
        "WHERE l.Quantity > 1",
        pg_shop, pg_schema,
    )  # fmt: skip
    assert outcome.ok, outcome.error
    assert outcome.answer_sql == (
        'SELECT DISTINCT c."FirstName" FROM "Customer" AS c JOIN "Invoice" ON c."CustomerId" = "Invoice"."CustomerId" '
        'JOIN "InvoiceLine" AS l ON "Invoice"."InvoiceId" = l."InvoiceId" WHERE l."Quantity" > 1'
    )
    assert [tuple(r) for r in outcome.result.rows] == [("Ann",)]


def test_a_literal_is_relinked_by_asking_the_server_with_its_names_quoted(pg_shop: str, pg_schema: str) -> None:
    # The probes run on PostgreSQL itself: "FirstName" must be quoted there, or the probe fails and nothing changes.
    outcome = pg_check("SELECT COUNT(*) FROM Customer WHERE FirstName = 'US'", pg_shop, pg_schema)
    assert outcome.ok, outcome.error
    assert outcome.answer_sql == "SELECT COUNT(*) FROM \"Customer\" WHERE country = 'US'"
    assert [tuple(r) for r in outcome.result.rows] == [(1,)]
    respelled = pg_check("SELECT c.CustomerId FROM Customer c WHERE c.FirstName = 'ann'", pg_shop, pg_schema)
    assert respelled.ok and [tuple(r) for r in respelled.result.rows] == [(1,)], respelled.error
    assert "spelled 'ann' as the data does: 'Ann'" in respelled.fixes


def test_two_values_of_one_column_are_intersected_on_postgres(pg_shop: str, pg_schema: str) -> None:
    outcome = pg_check(
        "SELECT c.FirstName FROM Customer c JOIN Invoice i ON c.CustomerId = i.CustomerId "
        "WHERE i.Total = 9.5 AND i.Total = 0.5",
        pg_shop, pg_schema,
    )  # fmt: skip
    assert outcome.ok, outcome.error
    assert " INTERSECT " in outcome.answer_sql
    assert [tuple(r) for r in outcome.result.rows] == [("Ann",)]  # Ann's two invoices


def test_mariadb_compares_without_case_so_nothing_is_relinked(
    mysql_engine: sa.Engine, mysql_prefix: str, mysql_url: str
) -> None:
    table = f"{mysql_prefix}Country"
    with mysql_engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE `{table}` (Code CHAR(3) PRIMARY KEY, Continent TEXT, Region TEXT)")
        connection.exec_driver_sql(f"INSERT INTO `{table}` VALUES ('EGY', 'Africa', 'Northern Africa')")
    moved = mysql_check(f"SELECT Code FROM {table} WHERE Continent = 'Northern Africa'", mysql_url, table)
    assert moved.ok and [tuple(r) for r in moved.result.rows] == [("EGY",)], moved.error
    assert moved.answer_sql == f"SELECT Code FROM {table} WHERE Region = 'Northern Africa'"
    # MariaDB's default collation already finds 'africa': the column holds it, and the literal stays as written.
    kept = mysql_check(f"SELECT Code FROM {table} WHERE Continent = 'africa'", mysql_url, table)
    assert kept.ok and not kept.fixes and [tuple(r) for r in kept.result.rows] == [("EGY",)]


def test_a_negation_across_a_join_is_not_exists_with_mixed_case_names_quoted(pg_shop: str, pg_schema: str) -> None:
    some_other = "SELECT c.FirstName FROM Customer c JOIN Invoice i ON c.CustomerId = i.CustomerId WHERE i.Total <> 9.5"
    outcome = pg_check(some_other, pg_shop, pg_schema, question="Which customers have no invoice of 9.5?")
    assert outcome.ok, outcome.error
    assert outcome.answer_sql == (
        'SELECT c."FirstName" FROM "Customer" AS c WHERE NOT EXISTS(SELECT 1 FROM "Invoice" AS i '
        'WHERE i."CustomerId" = c."CustomerId" AND i."Total" = 9.5)'
    )
    assert [tuple(r) for r in outcome.result.rows] == [("Bo",)]  # the join's answer also listed Ann (her 0.5)


def test_a_column_both_joined_tables_hold_is_qualified_for_postgres(pg_shop: str, pg_schema: str) -> None:
    ambiguous = 'SELECT "CustomerId" FROM "Customer" c JOIN "Invoice" i ON c."CustomerId" = i."CustomerId" WHERE i."Total" > 1'
    with pytest.raises(ExecutionError, match="ambiguous"):
        execute_read_only(pg_shop, ambiguous, max_rows=10, timeout_s=5)
    outcome = pg_check(ambiguous, pg_shop, pg_schema)
    assert outcome.ok, outcome.error
    assert sorted(tuple(r) for r in outcome.result.rows) == [(1,), (2,)]
