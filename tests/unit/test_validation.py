"""validate_sql / transpile_sql: one statement, read-only, no dangerous functions, real identifiers."""

from __future__ import annotations

import pytest

import text2sql.validation as validation
from text2sql.schema.model import Column, DatabaseSchema, Table
from text2sql.validation import (
    FORBIDDEN_FUNCTIONS,
    SUPPORTED_DIALECTS,
    ValidationResult,
    is_forbidden_function,
    transpile_sql,
    validate_sql,
)

SCHEMA = DatabaseSchema(
    tables=[
        Table(
            name="Customer",
            columns=[
                Column(name="CustomerId", primary_key=True),
                Column(name="FirstName"),
                Column(name="Country"),
            ],
        ),
        Table(
            name="Invoice",
            columns=[
                Column(name="InvoiceId", primary_key=True),
                Column(name="CustomerId"),
                Column(name="Total"),
                Column(name="BillingCountry"),
            ],
        ),
    ]
)


def codes(result: ValidationResult) -> list[str]:
    return [e.code for e in result.errors]


# --- accepted ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "SELECT 1;",
        "SELECT 1;   ",
        "SELECT 1; -- trailing comment",
        "/* leading */ SELECT 1 -- trailing",
        "-- a comment line\nSELECT 1\n-- another",
        "(SELECT 1)",
        "SELECT 1 UNION SELECT 2",
        "SELECT 1 INTERSECT SELECT 1",
        "SELECT 1 EXCEPT SELECT 2",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r",
        "SELECT ';' AS semicolon_in_a_string",
        "SELECT 'DROP TABLE x; DELETE FROM y' AS harmless_text",
        "SELECT randomblob(1000000000)",
    ],
)
def test_accepts_one_read_only_query(sql: str) -> None:
    result = validate_sql(sql)
    assert result.valid, result.errors
    assert result.errors == []


def test_normalised_sql_drops_comments_and_the_trailing_semicolon() -> None:
    result = validate_sql("/* hello */ SELECT  a  FROM t -- bye\n;")
    assert result.valid
    assert result.sql == "SELECT a FROM t"


def test_current_setting_is_allowed() -> None:
    assert validate_sql("SELECT current_setting('search_path')", dialect="postgres").valid


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        ("SELECT `a b` FROM `t` LIMIT 3", "mysql"),
        ("SELECT TOP 3 [a b] FROM [dbo].[t]", "tsql"),
        ("SELECT a FROM `project.dataset.t` WHERE a = 'x'", "bigquery"),
        ("SELECT a FROM t QUALIFY ROW_NUMBER() OVER (ORDER BY a) = 1", "snowflake"),
        ("SELECT a FROM t WHERE a ILIKE '%x%'", "duckdb"),
        ("SELECT a::text FROM t WHERE a ~ 'x'", "postgres"),
    ],
)
def test_parses_in_each_dialect(sql: str, dialect: str) -> None:
    assert validate_sql(sql, dialect=dialect).valid


def test_unknown_dialect_is_a_value_error_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect 'oracle9'") as info:
        validate_sql("SELECT 1", dialect="oracle9")
    for name in ("sqlite", "postgres", "mysql", "duckdb", "bigquery", "snowflake", "tsql"):
        assert name in str(info.value)
    assert "sqlite" in SUPPORTED_DIALECTS


def test_dialect_name_is_case_insensitive() -> None:
    assert validate_sql("SELECT 1", dialect="PostgreS").valid


# --- one statement ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DROP TABLE x",
        "SELECT 1;DROP TABLE x;",
        "SELECT 1 /* */; DROP TABLE x",
        "SELECT 1 -- \n; DELETE FROM t",
        "SELECT 1 /* ; */ ; DELETE FROM t",
        "SELECT 1; SELECT 2",
        "SELECT '1'';'; DROP TABLE x",
    ],
)
def test_refuses_stacked_statements(sql: str) -> None:
    result = validate_sql(sql)
    assert not result.valid
    assert codes(result) == ["multiple_statements"]
    assert "found 2" in result.errors[0].message


def test_backslash_does_not_hide_a_second_statement_in_postgres() -> None:
    # Standard strings: '\' is a complete literal, so a DROP follows it.
    result = validate_sql("SELECT '\\'; DROP TABLE x; --'", dialect="postgres")
    assert codes(result) == ["multiple_statements"]


@pytest.mark.parametrize(
    "sql",
    ["SELECT 1 /*! ; DROP TABLE x */", "SELECT 1 /*!50000 , SLEEP(10) */", "SELECT 1 /*M! , SLEEP(10) */"],
)
def test_refuses_mysql_executable_comments(sql: str) -> None:
    assert codes(validate_sql(sql, dialect="mysql")) == ["executable_comment"]


# --- read-only --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        ("INSERT INTO t VALUES (1)", "sqlite"),
        ("INSERT INTO t SELECT * FROM t", "postgres"),
        ("UPDATE t SET a = 1", "sqlite"),
        ("DELETE FROM t", "sqlite"),
        ("MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE", "postgres"),
        ("CREATE TABLE x (a INT)", "sqlite"),
        ("CREATE TABLE x AS SELECT 1", "postgres"),
        ("CREATE VIEW v AS SELECT 1", "postgres"),
        ("DROP TABLE t", "sqlite"),
        ("ALTER TABLE t ADD COLUMN b INT", "sqlite"),
        ("TRUNCATE t", "postgres"),
        ("PRAGMA writable_schema = ON", "sqlite"),
        ("ATTACH DATABASE '/tmp/evil.db' AS evil", "sqlite"),
        ("DETACH DATABASE evil", "sqlite"),
        ("VACUUM", "sqlite"),
        ("REINDEX", "sqlite"),
        ("COPY t TO '/tmp/out.csv'", "postgres"),
        ("COPY t FROM PROGRAM 'id'", "postgres"),
        ("CALL do_things()", "postgres"),
        ("DO $$ BEGIN DELETE FROM t; END $$", "postgres"),
        ("GRANT ALL ON t TO public", "postgres"),
        ("REVOKE ALL ON t FROM public", "postgres"),
        ("SET search_path = evil", "postgres"),
        ("SET SESSION TRANSACTION READ WRITE", "mysql"),
        ("BEGIN", "postgres"),
        ("COMMIT", "postgres"),
        ("EXPLAIN ANALYZE DELETE FROM t", "postgres"),
        ("SHOW TABLES", "mysql"),
        ("USE other", "mysql"),
        ("REPLACE INTO t VALUES (1)", "mysql"),
        ("KILL 1", "mysql"),
        ("LISTEN channel", "postgres"),
        ("EXEC xp_cmdshell 'dir'", "tsql"),
        ("INSTALL httpfs", "duckdb"),
        ("VALUES (1), (2)", "postgres"),
    ],
)
def test_refuses_statements_that_are_not_queries(sql: str, dialect: str) -> None:
    result = validate_sql(sql, dialect=dialect)
    assert not result.valid
    assert codes(result)[0] == "not_read_only", result.errors


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        ("LOAD DATA INFILE '/etc/passwd' INTO TABLE t", "mysql"),
        ("SELECT * FROM t INTO OUTFILE '/tmp/x'", "mysql"),
        ("SELECT * FROM (DELETE FROM t RETURNING *) AS d", "postgres"),
    ],
)
def test_refuses_writes_sqlglot_cannot_even_parse(sql: str, dialect: str) -> None:
    assert not validate_sql(sql, dialect=dialect).valid


@pytest.mark.parametrize(
    ("sql", "dialect", "what"),
    [
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "postgres", "DELETE"),
        ("WITH d AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM d", "postgres", "UPDATE"),
        ("WITH d AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM d", "postgres", "INSERT"),
        (
            "WITH ok AS (SELECT 1), d AS (DELETE FROM t RETURNING *) SELECT * FROM ok UNION SELECT 1 FROM d",
            "postgres",
            "DELETE",
        ),
        ("SELECT * INTO new_table FROM t", "postgres", "INTO"),
        ("SELECT * INTO #tmp FROM t", "tsql", "INTO"),
        ("SELECT * FROM t FOR UPDATE", "postgres", "lock"),
        ("SELECT * FROM t FOR SHARE", "postgres", "lock"),
        ("SELECT * FROM t FOR UPDATE SKIP LOCKED", "postgres", "lock"),
        ("SELECT * FROM t LOCK IN SHARE MODE", "mysql", "lock"),
        ("SELECT 1 WHERE EXISTS (SELECT 1 FROM t FOR UPDATE)", "postgres", "lock"),
        ("SELECT * FROM (SELECT * FROM t FOR UPDATE) AS s", "postgres", "lock"),
    ],
)
def test_refuses_writes_and_locks_anywhere_in_the_tree(sql: str, dialect: str, what: str) -> None:
    result = validate_sql(sql, dialect=dialect)
    assert codes(result) == ["not_read_only"], result.errors
    assert what in result.errors[0].message


# --- functions --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        ("SELECT pg_read_file('/etc/passwd')", "postgres"),
        ("SELECT pg_read_binary_file('/etc/passwd')", "postgres"),
        ("SELECT * FROM pg_ls_dir('/')", "postgres"),
        ("SELECT pg_stat_file('/etc/passwd')", "postgres"),
        ("SELECT lo_import('/etc/passwd')", "postgres"),
        ("SELECT lo_export(1, '/tmp/x')", "postgres"),
        ("SELECT pg_sleep(100)", "postgres"),
        ("SELECT pg_catalog.PG_SLEEP(100)", "postgres"),
        ('SELECT "pg_sleep"(100)', "postgres"),
        ("SELECT dblink('host=evil', 'SELECT 1')", "postgres"),
        ("SELECT dblink_exec('host=evil', 'DROP TABLE t')", "postgres"),
        ("SELECT pg_terminate_backend(1)", "postgres"),
        ("SELECT pg_cancel_backend(1)", "postgres"),
        ("SELECT set_config('search_path', 'x', false)", "postgres"),
        ("SELECT nextval('s')", "postgres"),
        ("SELECT setval('s', 1)", "postgres"),
        ("SELECT query_to_xml('DELETE FROM t', true, true, '')", "postgres"),
        ("SELECT a FROM t WHERE a = (SELECT pg_sleep(1))", "postgres"),
        ("SELECT LOAD_FILE('/etc/passwd')", "mysql"),
        ("SELECT SLEEP(10)", "mysql"),
        ("SELECT BENCHMARK(100000000, MD5('x'))", "mysql"),
        ("SELECT sys_exec('id')", "mysql"),
        ("SELECT GET_LOCK('x', 10)", "mysql"),
        ("SELECT xp_cmdshell('dir')", "tsql"),
        ("SELECT * FROM OPENROWSET('SQLNCLI', 'server=evil', 'SELECT 1')", "tsql"),
        ("SELECT load_extension('/tmp/evil.so')", "sqlite"),
        ("SELECT readfile('/etc/passwd')", "sqlite"),
        ("SELECT writefile('/tmp/x', 'data')", "sqlite"),
        ("SELECT edit('text')", "sqlite"),
        ("SELECT fts3_tokenizer('simple')", "sqlite"),
        ("SELECT * FROM read_csv('/etc/passwd')", "duckdb"),
        ("SELECT getenv('HOME')", "duckdb"),
        ("SELECT SYSTEM$CANCEL_ALL_QUERIES(1)", "snowflake"),
    ],
)
def test_refuses_dangerous_functions(sql: str, dialect: str) -> None:
    result = validate_sql(sql, dialect=dialect)
    assert codes(result) == ["forbidden_function"], result.errors


def test_forbidden_function_names_and_prefixes() -> None:
    assert is_forbidden_function("PG_READ_FILE")
    assert is_forbidden_function("dblink_connect")  # from the dblink* prefix
    assert is_forbidden_function("xp_dirtree")
    assert not is_forbidden_function("current_setting")
    assert not is_forbidden_function("count")
    assert not is_forbidden_function("randomblob")
    assert "pg_read_file" in FORBIDDEN_FUNCTIONS


def test_every_problem_is_reported_once() -> None:
    result = validate_sql("SELECT pg_sleep(1), pg_sleep(2), pg_read_file('x')", dialect="postgres")
    assert [e.message.split("()")[0] for e in result.errors] == ["function pg_sleep", "function pg_read_file"]


# --- text -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sql", ["", "   \n\t", "-- only a comment", "/* only a comment */", ";", " ; ; "])
def test_empty_input(sql: str) -> None:
    result = validate_sql(sql)
    assert codes(result) == ["empty"]


def test_lone_surrogates_from_undecodable_bytes_are_invalid_text() -> None:
    sql = b"SELECT '\xff\xfe' AS x".decode("utf-8", errors="surrogateescape")
    result = validate_sql(sql)
    assert codes(result) == ["invalid_text"]
    assert "UTF-8" in result.errors[0].message
    result.model_dump_json()  # the result stays serialisable
    assert "\ufffd" in result.sql


def test_nul_is_invalid_text() -> None:
    assert codes(validate_sql("SELECT 1\x00; DROP TABLE t")) == ["invalid_text"]


def test_replacement_characters_are_ordinary_text() -> None:
    sql = b"SELECT '\xff' AS x".decode("utf-8", errors="replace")
    assert validate_sql(sql).valid


def test_parse_errors_are_plain_text() -> None:
    result = validate_sql("SELECT FROM WHERE")
    assert codes(result) == ["parse_error"]
    assert "\x1b" not in result.errors[0].message
    assert "line 1" in result.errors[0].message


def test_unterminated_string_is_a_parse_error() -> None:
    assert codes(validate_sql("SELECT 'abc")) == ["parse_error"]


def test_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    sql = "SELECT " + "(" * 5000 + "1" + ")" * 5000
    assert codes(validate_sql(sql)) == ["parse_error"]


# --- identifiers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT FirstName FROM Customer",
        "select firstname from customer",
        "SELECT c.FirstName, i.Total FROM Customer AS c JOIN Invoice AS i ON c.CustomerId = i.CustomerId",
        "SELECT Customer.FirstName FROM Customer",
        "SELECT c.* FROM Customer c",
        "SELECT * FROM Customer",
        "SELECT Country, COUNT(*) AS n FROM Customer GROUP BY Country HAVING n > 1 ORDER BY n DESC",
        "SELECT Country AS land FROM Customer ORDER BY land",
        "WITH big AS (SELECT CustomerId, SUM(Total) AS spent FROM Invoice GROUP BY CustomerId) "
        "SELECT c.FirstName, big.spent FROM big JOIN Customer c ON c.CustomerId = big.CustomerId",
        "WITH ids(id) AS (SELECT CustomerId FROM Customer) SELECT ids.id FROM ids",
        "SELECT s.total FROM (SELECT SUM(Total) AS total FROM Invoice) AS s",
        "SELECT s.x FROM (SELECT Total FROM Invoice) AS s(x)",
        "SELECT s.Total FROM (SELECT * FROM Invoice) AS s",
        "SELECT FirstName FROM Customer c WHERE EXISTS "
        "(SELECT 1 FROM Invoice i WHERE i.CustomerId = c.CustomerId AND Total > 10)",
        "SELECT FirstName, (SELECT MAX(Total) FROM Invoice WHERE Invoice.CustomerId = Customer.CustomerId) AS top "
        "FROM Customer",
        "SELECT Country FROM Customer UNION SELECT BillingCountry FROM Invoice ORDER BY Country",
        "SELECT FirstName FROM Customer JOIN Invoice USING (CustomerId)",
        "SELECT rowid, FirstName FROM Customer",
        "SELECT value FROM Customer, json_each(Customer.Country)",
        "SELECT FirstName FROM main.Customer",
        'SELECT FirstName FROM Customer WHERE Country = "Norway"',  # SQLite: an unknown "name" is a string
    ],
)
def test_known_identifiers_pass(sql: str) -> None:
    result = validate_sql(sql, schema=SCHEMA)
    assert result.valid, result.errors


def test_unknown_table_suggests_the_closest_tables() -> None:
    result = validate_sql("SELECT * FROM Customers", schema=SCHEMA)
    assert codes(result) == ["unknown_table"]
    assert "Customers" in result.errors[0].message
    assert result.errors[0].suggestions == ["Customer"]


def test_unknown_column_suggests_table_dot_column() -> None:
    result = validate_sql("SELECT FirstNam FROM Customer", schema=SCHEMA)
    assert codes(result) == ["unknown_column"]
    assert "FirstNam" in result.errors[0].message
    assert result.errors[0].suggestions == ["Customer.FirstName"]


def test_qualified_unknown_column_names_its_table() -> None:
    result = validate_sql("SELECT c.Total FROM Customer AS c", schema=SCHEMA)
    assert codes(result) == ["unknown_column"]
    assert "'Customer' has no column 'Total'" in result.errors[0].message


def test_unqualified_column_must_exist_in_a_table_in_scope() -> None:
    # Total exists, but only in Invoice, which this query does not read.
    result = validate_sql("SELECT Total FROM Customer", schema=SCHEMA)
    assert codes(result) == ["unknown_column"]
    assert result.errors[0].suggestions == ["Invoice.Total"]


def test_unknown_alias_is_reported() -> None:
    result = validate_sql("SELECT x.FirstName FROM Customer AS c", schema=SCHEMA)
    assert codes(result) == ["unknown_table"]
    assert "'x'" in result.errors[0].message
    assert codes(validate_sql("SELECT x.* FROM Customer AS c", schema=SCHEMA)) == ["unknown_table"]


def test_cte_columns_are_checked() -> None:
    sql = "WITH t AS (SELECT CustomerId AS id FROM Customer) SELECT t.name FROM t"
    result = validate_sql(sql, schema=SCHEMA)
    assert codes(result) == ["unknown_column"]
    assert "'t' has no column 'name'" in result.errors[0].message


def test_subquery_columns_are_checked_in_their_own_scope() -> None:
    sql = "SELECT FirstName FROM Customer WHERE CustomerId IN (SELECT CustomerId FROM Invoice WHERE Totl > 5)"
    result = validate_sql(sql, schema=SCHEMA)
    assert codes(result) == ["unknown_column"]
    assert result.errors[0].suggestions == ["Invoice.Total"]


def test_double_quotes_are_identifiers_outside_sqlite() -> None:
    sql = 'SELECT FirstName FROM Customer WHERE Country = "Norway"'
    assert codes(validate_sql(sql, dialect="postgres", schema=SCHEMA)) == ["unknown_column"]


def test_table_functions_are_opaque_not_errors() -> None:
    sql = "SELECT g.n, n FROM generate_series(1, 3) AS g(n)"
    assert validate_sql(sql, dialect="postgres", schema=SCHEMA).valid


def test_unknown_table_and_column_are_both_reported() -> None:
    result = validate_sql("SELECT c.Nope, o.Whatever FROM Customer c JOIN Orders o ON 1 = 1", schema=SCHEMA)
    assert sorted(codes(result)) == ["unknown_column", "unknown_table"]


def test_join_using_column_must_exist_on_both_sides() -> None:
    # Country is only in Customer: the right side of this USING lacks it.
    result = validate_sql("SELECT FirstName FROM Customer JOIN Invoice USING (Country)", schema=SCHEMA)
    assert codes(result) == ["unknown_column"]
    assert "USING (Country): the right side ('Invoice') has no such column" in result.errors[0].message
    assert result.errors[0].suggestions == ["Invoice.BillingCountry"]
    # Total is only in Invoice: now the left side lacks it.
    result = validate_sql("SELECT FirstName FROM Customer c JOIN Invoice i USING (Total)", schema=SCHEMA)
    assert codes(result) == ["unknown_column"]
    assert "the left side ('Customer') has no such column" in result.errors[0].message


def test_join_using_finds_the_column_in_any_earlier_table() -> None:
    sql = (
        "WITH spend AS (SELECT CustomerId, SUM(Total) AS spent FROM Invoice GROUP BY CustomerId) "
        "SELECT FirstName, spent FROM Invoice JOIN Customer USING (CustomerId) JOIN spend USING (CustomerId)"
    )
    assert validate_sql(sql, schema=SCHEMA).valid
    sql = "SELECT FirstName FROM Customer JOIN (SELECT CustomerId AS cid FROM Invoice) s USING (CustomerId)"
    assert "the right side ('s') has no such column" in validate_sql(sql, schema=SCHEMA).errors[0].message


def test_schema_is_not_checked_for_statements_already_refused() -> None:
    assert codes(validate_sql("DROP TABLE Nope", schema=SCHEMA)) == ["not_read_only"]


def test_column_check_falls_back_to_tables_when_scopes_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_expression: object) -> list[object]:
        raise ValueError("sqlglot could not build scopes")

    monkeypatch.setattr(validation, "traverse_scope", broken)
    assert validate_sql("SELECT Anything FROM Customer", schema=SCHEMA).valid
    assert codes(validate_sql("SELECT Anything FROM Nowhere", schema=SCHEMA)) == ["unknown_table"]


# --- transpile --------------------------------------------------------------------------------------------


def test_transpile_between_dialects() -> None:
    assert (
        transpile_sql("SELECT TOP 5 a FROM t", source="tsql", target="postgres") == "SELECT a FROM t LIMIT 5"
    )
    assert transpile_sql("SELECT a FROM t LIMIT 5", source="sqlite", target="tsql") == "SELECT TOP 5 a FROM t"
    assert transpile_sql("SELECT `a` FROM `t`;", source="mysql", target="postgres") == 'SELECT "a" FROM "t"'


def test_transpile_refuses_several_statements() -> None:
    with pytest.raises(ValueError, match="expected one statement, got 2"):
        transpile_sql("SELECT 1; SELECT 2", source="sqlite", target="postgres")


def test_transpile_names_a_parse_error() -> None:
    with pytest.raises(ValueError, match="cannot transpile from sqlite to postgres"):
        transpile_sql("SELECT (", source="sqlite", target="postgres")


def test_transpile_names_an_unsupported_feature() -> None:
    with pytest.raises(ValueError, match="FOR UPDATE"):
        transpile_sql("SELECT a FROM t FOR UPDATE", source="postgres", target="sqlite")


def test_transpile_rejects_unknown_dialects() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect 'klingon'"):
        transpile_sql("SELECT 1", source="klingon", target="postgres")
