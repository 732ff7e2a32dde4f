"""validate_sql / transpile_sql: one statement, read-only, allowed functions and schemas, real identifiers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import text2sql.validation as validation
from text2sql.dialects import SUPPORTED_DIALECTS, transpile_sql
from text2sql.schema.introspect import introspect
from text2sql.schema.model import Column, DatabaseSchema, Table
from text2sql.sql_functions import GENERIC, MYSQL, POSTGRES, SQL_FORMS, SQLITE
from text2sql.validation import (
    ValidationResult,
    is_allowed_function,
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


def test_current_setting_is_refused_it_reads_server_configuration() -> None:
    result = validate_sql("SELECT current_setting('search_path')", dialect="postgres")
    assert codes(result) == ["forbidden_function"]
    assert result.errors[0].message == "function current_setting() is not on the allow-list for postgres"


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
        # found by the security review: SQL given as text, side effects, whole tables by name
        (
            "SELECT * FROM ts_stat('SELECT array_to_tsvector(ARRAY[pg_read_file(''/etc/passwd'')])')",
            "postgres",
        ),
        ("SELECT ts_rewrite('a'::tsquery, 'SELECT q, r FROM aliases')", "postgres"),
        ("SELECT * FROM crosstab('SELECT 1, 2, 3') AS ct(a INT, b INT)", "postgres"),
        ("SELECT table_to_xml('secret_tbl', true, true, '')", "postgres"),
        ("SELECT schema_to_xml('public', true, true, '')", "postgres"),
        ("SELECT pg_stat_reset()", "postgres"),
        ("SELECT pg_stat_statements_reset()", "postgres"),
        ("SELECT brin_summarize_new_values('idx')", "postgres"),
        ("SELECT gin_clean_pending_list('idx')", "postgres"),
        ("SELECT txid_current()", "postgres"),
        ("SELECT pg_current_xact_id()", "postgres"),
        ("SELECT pg_log_backend_memory_contexts(1)", "postgres"),
        ("SELECT pg_create_logical_replication_slot('s', 'test_decoding')", "postgres"),
        ("SELECT pg_reload_conf()", "postgres"),
        ("SELECT pg_switch_wal()", "postgres"),
        ("SELECT currval('s')", "postgres"),
        ("SELECT setseed(0.5)", "postgres"),
        ("SELECT lo_get(1)", "postgres"),
        ("SELECT RELEASE_LOCK('x')", "mysql"),
        ("SELECT LAST_INSERT_ID(42)", "mysql"),
        ("SELECT UUID_SHORT()", "mysql"),
        ("SELECT MASTER_POS_WAIT('log', 4)", "mysql"),
        ("SELECT sqlite_version()", "sqlite"),
    ],
)
def test_refuses_dangerous_functions(sql: str, dialect: str) -> None:
    result = validate_sql(sql, dialect=dialect)
    assert codes(result) == ["forbidden_function"], result.errors


def test_allowed_function_names_per_dialect() -> None:
    assert is_allowed_function("COUNT", "sqlite")
    assert is_allowed_function("randomblob", "sqlite")  # bounded by SQLITE_LIMIT_LENGTH and the byte budget
    assert is_allowed_function("date_trunc", "postgres")
    assert is_allowed_function("DATE_FORMAT", "mysql")
    assert is_allowed_function("cast", "duckdb")  # a standard SQL form, in every dialect
    assert not is_allowed_function("PG_READ_FILE", "postgres")
    assert not is_allowed_function("dblink_connect", "postgres")
    assert not is_allowed_function("xp_dirtree", "tsql")
    assert not is_allowed_function("date_trunc", "sqlite")  # not a SQLite function
    assert not is_allowed_function("strftime", "postgres")


def test_every_problem_is_reported_once() -> None:
    result = validate_sql("SELECT pg_sleep(1), pg_sleep(2), pg_read_file('x')", dialect="postgres")
    assert [e.message.split("()")[0] for e in result.errors] == ["function pg_sleep", "function pg_read_file"]


def test_refusal_names_the_function_and_the_dialect() -> None:
    result = validate_sql("SELECT * FROM ts_stat('SELECT 1')", dialect="postgres")
    assert result.errors[0].message == "function ts_stat() is not on the allow-list for postgres"


# Ordinary analytical SQL, the way models and benchmarks write it, in each dialect with a list of its own.
@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        (
            "SELECT g.Name, COUNT(*) AS n, ROUND(AVG(t.Milliseconds) / 60000.0, 2) AS minutes, MAX(t.UnitPrice), "
            "SUM(il.Quantity * il.UnitPrice), GROUP_CONCAT(DISTINCT t.Composer) FROM Track t "
            "JOIN Genre g ON g.GenreId = t.GenreId JOIN InvoiceLine il ON il.TrackId = t.TrackId "
            "GROUP BY g.Name HAVING COUNT(*) > 10 ORDER BY n DESC LIMIT 5",
            "sqlite",
        ),
        (
            "SELECT strftime('%Y', InvoiceDate) AS y, CAST(SUM(Total) AS INTEGER), date(InvoiceDate, '+1 month'), "
            "julianday('now') - julianday(InvoiceDate), datetime(InvoiceDate), unixepoch(InvoiceDate) FROM Invoice "
            "WHERE InvoiceDate >= date('now', '-7 years') GROUP BY y",
            "sqlite",
        ),
        (
            "SELECT iif(Total > 10, 'big', 'small'), ifnull(BillingState, '-'), coalesce(a, b), nullif(a, 0), "
            "substr(Name, 1, 3), upper(Name), lower(Name), length(Name), trim(Name), replace(Name, 'a', 'b'), "
            "instr(Name, 'x'), printf('%.2f', Total), abs(Total), max(a, b), min(a, b), typeof(a), "
            "Name LIKE 'A%', Name GLOB 'A*', json_extract(j, '$.a'), j ->> '$.a', total(Total) FROM Invoice",
            "sqlite",
        ),
        (
            "SELECT CustomerId, Total, ROW_NUMBER() OVER (PARTITION BY CustomerId ORDER BY Total DESC), "
            "RANK() OVER w, LAG(Total, 1, 0) OVER w, SUM(Total) OVER (ORDER BY InvoiceDate ROWS BETWEEN 2 "
            "PRECEDING AND CURRENT ROW), NTILE(4) OVER w, PERCENT_RANK() OVER w FROM Invoice WINDOW w AS "
            "(ORDER BY Total)",
            "sqlite",
        ),
        (
            "SELECT DATE_TRUNC('month', o.created_at) AS m, EXTRACT(YEAR FROM o.created_at), "
            "TO_CHAR(o.created_at, 'YYYY-MM'), AGE(NOW(), o.created_at), date_part('dow', o.created_at), "
            "COUNT(*) FILTER (WHERE o.total > 100), PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY o.total), "
            "STRING_AGG(o.note, ', ' ORDER BY o.id), ARRAY_AGG(o.id), ROUND(AVG(o.total)::numeric, 2) "
            "FROM orders o WHERE o.created_at >= CURRENT_DATE - INTERVAL '30 days' "
            "AND o.created_at < now() - interval '1 hour' GROUP BY 1 ORDER BY m NULLS LAST",
            "postgres",
        ),
        (
            "SELECT COALESCE(NULLIF(a, ''), 'none'), GREATEST(a, b), LEAST(a, b), CAST(a AS DECIMAL(10, 2)), "
            "a::date - b::date, to_timestamp(epoch), to_date(s, 'YYYY-MM-DD'), make_date(2024, 1, 1), "
            "split_part(s, ',', 1), regexp_replace(s, '[0-9]+', ''), initcap(s), lpad(s, 5, '0'), "
            "position('x' IN s), substring(s FROM 1 FOR 3), trim(BOTH ' ' FROM s), length(s), md5(s), "
            "jsonb_extract_path_text(j, 'a'), j ->> 'a', jsonb_array_length(j), date_bin('15 minutes', t, "
            "TIMESTAMP '2001-01-01'), random(), CASE WHEN a > 1 THEN 'x' ELSE 'y' END FROM t",
            "postgres",
        ),
        (
            "SELECT n, s.d FROM generate_series(1, 3) AS g(n), LATERAL (SELECT n * 2 AS d) AS s "
            "WHERE EXISTS (SELECT 1 FROM unnest(ARRAY[1, 2]) AS u(x) WHERE x = n) AND n = ANY(ARRAY[1, 2])",
            "postgres",
        ),
        (
            "SELECT YEAR(o.created), MONTH(o.created), DATE_FORMAT(o.created, '%Y-%m'), DATEDIFF(NOW(), o.created), "
            "DATE_ADD(o.created, INTERVAL 1 DAY), DATE_SUB(CURDATE(), INTERVAL 7 DAY), "
            "TIMESTAMPDIFF(MONTH, o.created, NOW()), STR_TO_DATE(o.s, '%Y-%m-%d'), IF(o.total > 10, 'big', 'small'), "
            "IFNULL(o.note, ''), GROUP_CONCAT(DISTINCT o.note ORDER BY o.id SEPARATOR ', '), "
            "CONCAT(o.a, '-', o.b), CONCAT_WS(',', o.a, o.b), LEFT(o.s, 3), SUBSTRING_INDEX(o.s, ',', 1), "
            "ROUND(AVG(o.total), 2), FLOOR(o.total), JSON_UNQUOTE(JSON_EXTRACT(o.j, '$.a')), o.s REGEXP '^a', "
            "o.s LIKE 'a%', CAST(o.total AS SIGNED), CONVERT(o.s USING utf8mb4) FROM orders o GROUP BY o.id",
            "mysql",
        ),
        (
            "SELECT o.id, ROW_NUMBER() OVER (PARTITION BY o.c ORDER BY o.total DESC), "
            "DENSE_RANK() OVER (ORDER BY o.total), FIRST_VALUE(o.id) OVER (ORDER BY o.total) FROM orders o "
            "WHERE MATCH(o.note) AGAINST('cheap') AND o.id IN (SELECT id FROM t)",
            "mysql",
        ),
    ],
)
def test_ordinary_analytical_functions_pass(sql: str, dialect: str) -> None:
    result = validate_sql(sql, dialect=dialect)
    assert result.valid, result.errors


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("SELECT upper(ts_stat('SELECT 1')::text)", "ts_stat"),
        ("WITH x AS (SELECT pg_read_file('/etc/passwd') AS f) SELECT f FROM x", "pg_read_file"),
        ("SELECT a FROM t WHERE a IN (SELECT pg_ls_dir('/'))", "pg_ls_dir"),
        ("SELECT a FROM t WHERE EXISTS (SELECT 1 FROM ts_stat('SELECT 1'))", "ts_stat"),
        ("SELECT row_number() OVER (ORDER BY pg_sleep(1)) FROM t", "pg_sleep"),
        ("SELECT sum(a) OVER (PARTITION BY txid_current()) FROM t", "txid_current"),
        ("SELECT a FROM t ORDER BY pg_sleep(1)", "pg_sleep"),
        ("SELECT a FROM t GROUP BY a HAVING count(*) > length(pg_read_file('x'))", "pg_read_file"),
        ("SELECT a FROM t JOIN u ON t.a = u.a AND pg_sleep(1) IS NULL", "pg_sleep"),
        ("SELECT * FROM t, LATERAL (SELECT query_to_xml('SELECT 1', true, true, '')) AS x", "query_to_xml"),
        ("SELECT * FROM (VALUES (1, pg_sleep(1))) AS v(a, b)", "pg_sleep"),
        ("SELECT CASE WHEN a > 1 THEN lo_export(1, '/tmp/x') END FROM t", "lo_export"),
        ("SELECT * FROM dblink('host=evil', 'SELECT 1') AS d(a INT)", "dblink"),
        ("SELECT a FROM t UNION SELECT set_config('x', 'y', false)", "set_config"),
        ("SELECT coalesce(a, pg_catalog.pg_read_file('x')) FROM t", "pg_read_file"),
    ],
)
def test_forbidden_functions_are_found_anywhere_in_the_tree(sql: str, name: str) -> None:
    result = validate_sql(sql, dialect="postgres")
    assert "forbidden_function" in codes(result), result.errors
    assert any(f"function {name}()" in e.message for e in result.errors), result.errors


@pytest.mark.parametrize(
    ("sql", "dialect", "message"),
    [
        ("SELECT YEAR(d) FROM t", "sqlite", "function year() is not on the allow-list for sqlite"),
        ("SELECT NOW()", "sqlite", "function now() is not on the allow-list for sqlite"),
        (
            "SELECT strftime('%Y', d) FROM t",
            "postgres",
            "function strftime() is not on the allow-list for postgres",
        ),
        (
            "SELECT SPLIT_PART(s, ',', 1) FROM t",
            "mysql",
            "function split_part() is not on the allow-list for mysql",
        ),
        ("SELECT CURRENT_USER", "postgres", "function current_user() is not on the allow-list for postgres"),
        ("SELECT DATABASE()", "mysql", "function schema() is not on the allow-list for mysql"),
        ("SELECT VERSION()", "mysql", "function version() is not on the allow-list for mysql"),
    ],
)
def test_typed_functions_are_judged_by_the_name_generated_for_the_dialect(
    sql: str, dialect: str, message: str
) -> None:
    # sqlglot reads DATABASE() as its CurrentSchema expression and writes SCHEMA(): that name is judged.
    result = validate_sql(sql, dialect=dialect)
    assert [e.message for e in result.errors] == [message]


def test_a_function_sqlglot_rewrites_for_the_dialect_is_judged_as_rewritten() -> None:
    # MySQL has no DATE_TRUNC: sqlglot writes it with STR_TO_DATE, CONCAT, YEAR and MONTH, all allowed.
    result = validate_sql("SELECT DATE_TRUNC('month', d) FROM t", dialect="mysql")
    assert result.valid, result.errors
    assert "DATE_TRUNC" not in result.sql


def test_syntax_that_sqlglot_models_as_functions_is_not_a_call() -> None:
    # CASE's branches are If nodes that T-SQL would write as IIF() on their own; AND/OR are functions too.
    for dialect in ("tsql", "snowflake", "bigquery", "postgres", "mysql", "sqlite"):
        sql = "SELECT CASE WHEN a > 1 AND b < 2 OR c THEN 1 ELSE 0 END FROM t WHERE NOT EXISTS (SELECT 1)"
        assert validate_sql(sql, dialect=dialect).valid, dialect


@pytest.mark.parametrize(
    ("sql", "dialect", "valid"),
    [
        ("SELECT pg_catalog.upper(a), pg_catalog.date_trunc('day', d) FROM t", "postgres", True),
        ("SELECT n FROM pg_catalog.generate_series(1, 3) AS g(n)", "postgres", True),
        ("SELECT pg_catalog.pg_read_file('/etc/passwd')", "postgres", False),
        ("SELECT public.upper(a) FROM t", "postgres", False),
        ('SELECT "Pg_Catalog".upper(a) FROM t', "postgres", False),
        ("SELECT other.db.upper(a) FROM t", "postgres", False),
        ("SELECT * FROM hidden.fn()", "postgres", False),
        ("SELECT test.upper(a) FROM t", "mysql", False),
        ("SELECT main.upper(a) FROM t", "sqlite", False),
    ],
)
def test_qualified_calls_only_through_the_builtin_catalogue(sql: str, dialect: str, valid: bool) -> None:
    result = validate_sql(sql, dialect=dialect)
    assert result.valid is valid, result.errors
    if not valid:
        assert codes(result) == ["forbidden_function"]


def test_a_qualified_call_message_names_the_qualifier() -> None:
    result = validate_sql("SELECT public.upper(a) FROM t", dialect="postgres")
    assert result.errors[0].message.startswith("function public.upper() is not allowed")
    assert "pg_catalog" in result.errors[0].message


def test_quoted_function_names_are_judged_as_postgres_will_call_them() -> None:
    # Quoted, the case is part of the name, and sqlglot upper-cases it when it writes the statement back.
    result = validate_sql('SELECT "age"(d), "Foo"(d) FROM t', dialect="postgres")
    assert result.sql == 'SELECT "AGE"(d), "FOO"(d) FROM t'
    assert [e.message for e in result.errors] == [
        "function AGE() is not on the allow-list for postgres",
        "function FOO() is not on the allow-list for postgres",
    ]
    assert validate_sql('SELECT "upper"(a) FROM t', dialect="postgres").valid  # sqlglot knows it: UPPER(a)
    assert validate_sql("SELECT `ABS`(-1)", dialect="mysql").valid  # MySQL ignores the case of functions


@pytest.mark.parametrize(("dialect", "names"), [("sqlite", SQLITE), ("postgres", POSTGRES), ("mysql", MYSQL)])
def test_every_allowed_function_written_as_a_call_validates(dialect: str, names: frozenset[str]) -> None:
    # sqlglot may read a name as one of its typed functions and write it back under another name: each name
    # on a list must survive that round trip in its own dialect (operators and MATCH ... AGAINST aside).
    refused = []
    for name in sorted(n for n in names if n.isidentifier() and n != "match"):
        messages: set[str] = set()
        for args in ("a", "", "a, b", "a, b, c", "a, b, c, d", "a, INTERVAL 1 DAY"):
            result = validate_sql(f"SELECT {name}({args}) FROM t", dialect=dialect)
            if result.valid:
                break
            messages |= {e.message for e in result.errors if e.code != "parse_error"}
        else:
            refused.append((name, sorted(messages)))
    assert refused == []


def test_every_chinook_gold_query_validates_against_the_live_schema(chinook_db: Path) -> None:
    schema = introspect(f"sqlite:///{chinook_db}", sample_values=0)
    assert schema.qualifiers == ["main"]
    data = Path(__file__).resolve().parents[2] / "bench" / "data"
    questions = [
        json.loads(line)["sql"] for line in (data / "chinook_questions.jsonl").read_text().splitlines()
    ]
    conversations = [
        json.loads(line) for line in (data / "chinook_conversations.jsonl").read_text().splitlines()
    ]
    turns = [turn["sql"] for conversation in conversations for turn in conversation["turns"]]
    assert len(questions) + len(turns) > 150
    refused = [
        (sql, result.errors)
        for sql in questions + turns
        if not (result := validate_sql(sql, schema=schema)).valid
    ]
    assert refused == []


def test_allow_lists_are_lower_case_names() -> None:
    for names in (SQLITE, POSTGRES, MYSQL, GENERIC, SQL_FORMS):
        assert all(n == n.lower() and n.strip() == n and n for n in names)
    assert not SQL_FORMS & {"pg_sleep", "sleep", "load_extension"}


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


# --- schema qualifiers and system catalogues ----------------------------------------------------------------


def live_schema(qualifier: str, *, name: str = "shop", extra: tuple[str, ...] = ()) -> DatabaseSchema:
    """As introspection reads one: the tables, the database name and the one exposed qualifier."""
    tables = [Table(name=n, columns=[Column(name="id"), Column(name="a")]) for n in ("t", *extra)]
    return DatabaseSchema(tables=tables, name=name, qualifiers=[qualifier])


@pytest.mark.parametrize(
    ("sql", "dialect", "qualifier"),
    [
        ("SELECT a FROM public.t", "postgres", "public"),
        ("SELECT a FROM PUBLIC.t", "postgres", "public"),  # unquoted: folded to public
        ("SELECT public.t.a FROM public.t", "postgres", "public"),
        ("SELECT x.a FROM shop.public.t AS x", "postgres", "public"),  # the current database
        ("SELECT a FROM sales.t", "postgres", "sales"),
        ("SELECT a FROM shop.t", "mysql", "shop"),
        ("SELECT shop.t.a FROM shop.t", "mysql", "shop"),
        ("SELECT a FROM main.t", "sqlite", "main"),
        ("SELECT a FROM MAIN.t", "sqlite", "main"),  # SQLite's schema names ignore case
        ("SELECT a FROM t", "postgres", "public"),
    ],
)
def test_qualifiers_the_schema_exposes_pass(sql: str, dialect: str, qualifier: str) -> None:
    result = validate_sql(sql, dialect=dialect, schema=live_schema(qualifier))
    assert result.valid, result.errors


@pytest.mark.parametrize(
    ("sql", "dialect", "qualifier", "message"),
    [
        ("SELECT * FROM hidden.t", "postgres", "public", "schema 'hidden' is not exposed; only 'public' is"),
        (
            'SELECT * FROM "Public".t',
            "postgres",
            "public",
            "schema 'Public' is not exposed; only 'public' is",
        ),
        (
            "SELECT hidden.t.a FROM t",
            "postgres",
            "public",
            "schema 'hidden' is not exposed; only 'public' is",
        ),
        (
            "SELECT * FROM t JOIN (SELECT * FROM hidden.t) AS h ON h.id = t.id",
            "postgres",
            "public",
            "schema 'hidden' is not exposed; only 'public' is",
        ),
        (
            "WITH x AS (SELECT * FROM hidden.t) SELECT * FROM x",
            "postgres",
            "public",
            "schema 'hidden' is not exposed; only 'public' is",
        ),
        (
            "SELECT * FROM other.public.t",
            "postgres",
            "public",
            "database 'other' is not exposed; only 'shop' is",
        ),
        ("SELECT * FROM other_db.t", "mysql", "shop", "database 'other_db' is not exposed; only 'shop' is"),
        ("SELECT * FROM SHOP.t", "mysql", "shop", "database 'SHOP' is not exposed; only 'shop' is"),
        (
            "SELECT * FROM temp.t",
            "sqlite",
            "main",
            "schema 'temp' is a system catalogue and is not exposed; only 'main' is",
        ),
        (
            "SELECT * FROM pg_catalog.pg_authid",
            "postgres",
            "public",
            "schema 'pg_catalog' is a system catalogue and is not exposed; only 'public' is",
        ),
        (
            "SELECT * FROM information_schema.tables",
            "mysql",
            "shop",
            "database 'information_schema' is a system catalogue and is not exposed; only 'shop' is",
        ),
    ],
)
def test_qualifiers_the_schema_does_not_expose_are_refused(
    sql: str, dialect: str, qualifier: str, message: str
) -> None:
    result = validate_sql(sql, dialect=dialect, schema=live_schema(qualifier))
    assert [(e.code, e.message) for e in result.errors] == [("forbidden_schema", message)]


def test_forbidden_schema_is_an_unsafe_verdict() -> None:
    from text2sql.pipeline.verdict import is_unsafe

    assert is_unsafe("forbidden_schema")


@pytest.mark.parametrize(
    ("sql", "dialect", "message"),
    [
        ("SELECT * FROM pg_catalog.pg_user", "postgres", "schema 'pg_catalog' is a system catalogue"),
        ("SELECT * FROM pg_user", "postgres", "table 'pg_user' is a system catalogue"),
        ("SELECT query FROM pg_stat_activity", "postgres", "table 'pg_stat_activity' is a system catalogue"),
        ("SELECT * FROM pg_toast.pg_toast_2619", "postgres", "schema 'pg_toast' is a system catalogue"),
        ("SELECT * FROM pg_temp_3.t", "postgres", "schema 'pg_temp_3' is a system catalogue"),
        ("SELECT * FROM information_schema.tables", "postgres", "schema 'information_schema' is a system"),
        ("SELECT * FROM mysql.user", "mysql", "database 'mysql' is a system catalogue"),
        ("SELECT * FROM performance_schema.threads", "mysql", "database 'performance_schema' is a system"),
        ("SELECT * FROM sys.session", "mysql", "database 'sys' is a system catalogue"),
        (
            "SELECT * FROM INFORMATION_SCHEMA.PROCESSLIST",
            "mysql",
            "database 'INFORMATION_SCHEMA' is a system",
        ),
        ("SELECT sql FROM sqlite_master", "sqlite", "table 'sqlite_master' is a system catalogue"),
        ("SELECT sql FROM main.sqlite_schema", "sqlite", "table 'sqlite_schema' is a system catalogue"),
        ("SELECT sql FROM sqlite_temp_master", "sqlite", "table 'sqlite_temp_master' is a system catalogue"),
        (
            "SELECT * FROM pragma_database_list",
            "sqlite",
            "table 'pragma_database_list' is a system catalogue",
        ),
        ("SELECT * FROM dbstat", "sqlite", "table 'dbstat' is a system catalogue"),
        ("SELECT * FROM t WHERE a IN (SELECT name FROM sqlite_master)", "sqlite", "table 'sqlite_master'"),
    ],
)
def test_system_catalogues_are_refused_with_or_without_a_schema(sql: str, dialect: str, message: str) -> None:
    for schema in (None, SCHEMA, DatabaseSchema(tables=SCHEMA.tables, qualifiers=["public", "main", "shop"])):
        result = validate_sql(sql, dialect=dialect, schema=schema)
        assert codes(result) == ["forbidden_schema"], (schema, result.errors)
        assert result.errors[0].message.startswith(message)


def test_a_system_catalogue_the_schema_lists_is_allowed() -> None:
    schema = live_schema("public").model_copy(update={"qualifiers": ["public", "information_schema"]})
    assert validate_sql("SELECT * FROM information_schema.t", dialect="postgres", schema=schema).valid
    # A table of the schema's own that happens to look like a catalogue, and a CTE of that name, are fine.
    assert validate_sql(
        "SELECT a FROM pg_stats", dialect="postgres", schema=live_schema("public", extra=("pg_stats",))
    ).valid
    assert validate_sql("WITH pg_x AS (SELECT 1 AS a) SELECT a FROM pg_x", dialect="postgres").valid


def test_without_known_qualifiers_user_schemas_keep_the_name_lookup() -> None:
    # A schema from pasted DDL says nothing about the database's schemas: the table name decides.
    assert validate_sql("SELECT FirstName FROM sales.Customer", dialect="postgres", schema=SCHEMA).valid
    dotted = DatabaseSchema(tables=[Table(name="sales.orders", columns=[Column(name="id")])])
    assert validate_sql("SELECT id FROM sales.orders", dialect="postgres", schema=dotted).valid
    assert validate_sql("SELECT a FROM `project.dataset.t`", dialect="bigquery").valid


# --- variables (MySQL / MariaDB) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT @v := (SELECT COUNT(*) FROM t)", "assigning user variable @v (:=) is not allowed"),
        ("SELECT a, (@rn := @rn + 1) AS rn FROM t", "assigning user variable @rn (:=) is not allowed"),
        ("SELECT @v", "user variable @v is not allowed"),
        ("SELECT a FROM t WHERE a = @v", "user variable @v is not allowed"),
        ("SELECT a FROM t ORDER BY @v", "user variable @v is not allowed"),
        ("SELECT @`odd name`", "user variable @`odd name` is not allowed"),
        ("SELECT @@version", "system variable @@version is not allowed"),
        ("SELECT @@global.secure_file_priv", "system variable @@global.secure_file_priv is not allowed"),
    ],
)
def test_mysql_variables_are_refused(sql: str, message: str) -> None:
    result = validate_sql(sql, dialect="mysql")
    assert codes(result)[0] == "not_read_only", result.errors
    assert result.errors[0].message.startswith(message)


def test_mysql_select_into_a_variable_is_refused() -> None:
    assert "not_read_only" in codes(validate_sql("SELECT COUNT(*) INTO @n FROM t", dialect="mysql"))


def test_variables_are_a_mysql_matter() -> None:
    assert validate_sql("SELECT a FROM t WHERE tags @> ARRAY['x']", dialect="postgres").valid
