"""The function allow-lists of `text2sql.sql_functions`, checked against the servers' own catalogues and against
the SQL people really write.

- PostgreSQL (``pg_proc``): every allowed name is a pg_catalog function that PUBLIC may execute, none takes an
  object by name (regclass, refcursor, ...), and each one pg_proc marks volatile has a written reason.
- MariaDB (``information_schema.SQL_FUNCTIONS`` and the ``mysql.help_topic`` index): every allowed name is
  listed there and the server's parser knows it (``PREPARE``, which runs nothing, does not answer "FUNCTION
  ... does not exist").
- SQLite (``pragma_function_list``, ``pragma_module_list`` for table functions): every allowed name is in the
  library, unless the library predates the function (`SQLITE_SINCE`).
- More than fifty known dangerous names are refused in every dialect.
- Introspection reads the one qualifier a live database exposes, and a query naming another schema or database
  of the same server is refused.
- Gold queries of Spider (train and the public dev half) and defog sql-eval validate without one refusal for
  safety (they live beside the repository; skipped without them).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.live_databases import MYSQL_URL, PG_URL
from tests.security.conftest import unique
from text2sql.accuracy import expand_gold_alternatives
from text2sql.pipeline.verdict import is_unsafe
from text2sql.schema.introspect import introspect
from text2sql.schema.model import Column, DatabaseSchema, Table
from text2sql.sql_functions import (
    MYSQL,
    MYSQL_ONLY,
    POSTGRES,
    POSTGRES_VOLATILE,
    SQL_FORMS,
    SQLITE,
    SQLITE_SINCE,
    SQLITE_TABLE_FUNCTIONS,
    is_allowed_function,
)
from text2sql.validation import validate_sql

SHARED_DIR = Path(__file__).resolve().parents[2].parent / "shared"

# Names that read files, run SQL given as text, touch other sessions, take locks, use sequences, read or reset
# statistics, touch replication/WAL/backups or configuration, open large objects, read a table by name,
# consume transaction ids, sleep, or reveal the server: none may be allowed in any dialect.
DANGEROUS = (
    # PostgreSQL: SQL given as text, whole tables/schemas/databases by name
    "ts_stat", "ts_rewrite", "crosstab", "crosstab2", "crosstab3", "connectby", "query_to_xml",
    "query_to_xml_and_xmlschema", "query_to_xmlschema", "cursor_to_xml", "table_to_xml",
    "table_to_xml_and_xmlschema", "schema_to_xml", "database_to_xml", "xpath",
    # PostgreSQL: other servers, files, large objects
    "dblink", "dblink_exec", "dblink_connect", "dblink_send_query", "pg_read_file", "pg_read_binary_file",
    "pg_ls_dir", "pg_ls_logdir", "pg_stat_file", "lo_import", "lo_export", "lo_get", "lo_put", "lo_from_bytea",
    "lo_unlink", "lo_open",
    # PostgreSQL: sessions, configuration, statistics, maintenance, replication, WAL, backups, locks, ids
    "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_terminate_backend", "pg_cancel_backend",
    "pg_reload_conf", "pg_rotate_logfile", "set_config", "current_setting", "pg_stat_reset",
    "pg_stat_reset_shared", "pg_stat_reset_single_table_counters", "pg_stat_statements_reset",
    "pg_stat_statements", "pg_stat_get_activity", "brin_summarize_new_values", "brin_summarize_range",
    "gin_clean_pending_list", "pg_log_backend_memory_contexts", "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot", "pg_drop_replication_slot", "pg_logical_slot_get_changes",
    "pg_replication_origin_create", "pg_switch_wal", "pg_backup_start", "pg_start_backup", "pg_promote",
    "pg_advisory_lock", "pg_try_advisory_xact_lock", "pg_notify", "nextval", "currval", "setval", "lastval",
    "setseed", "txid_current", "txid_current_snapshot", "pg_current_xact_id", "pg_get_viewdef",
    "has_table_privilege", "to_regclass", "inet_server_addr", "version", "current_user", "session_user",
    "current_database", "current_schema", "pg_typeof",
    # MySQL / MariaDB
    "load_file", "sleep", "benchmark", "get_lock", "release_lock", "release_all_locks", "is_free_lock",
    "is_used_lock", "master_pos_wait", "master_gtid_wait", "source_pos_wait", "binlog_gtid_pos",
    "wsrep_last_seen_gtid", "last_insert_id", "found_rows", "row_count", "connection_id", "uuid_short",
    "database", "schema", "user", "system_user", "password", "des_encrypt", "sys_exec", "sys_eval",
    "name_const", "updatexml",
    # SQLite (and its shell's extensions)
    "load_extension", "readfile", "writefile", "edit", "fsdir", "fts3_tokenizer", "sqlite_version",
    "sqlite_source_id", "sqlite_compileoption_get", "sqlite_compileoption_used", "sqlite_offset", "sqlite_log",
    "changes", "total_changes", "last_insert_rowid", "rtreecheck",
    # others
    "xp_cmdshell", "openrowset", "opendatasource", "openquery", "read_csv", "read_parquet", "getenv", "query",
    "query_table",
)  # fmt: skip


# --- every dialect ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", "duckdb", "tsql"])
def test_known_dangerous_names_are_not_allowed(dialect: str) -> None:
    assert len(set(DANGEROUS)) > 50
    assert [name for name in DANGEROUS if is_allowed_function(name, dialect)] == []


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql"])
def test_known_dangerous_names_are_refused_when_called(dialect: str) -> None:
    passed = []
    for name in DANGEROUS:
        for args in ("'x'", "", "'x', 'y'", "'x', 'y', 'z'"):
            result = validate_sql(f"SELECT {name}({args})", dialect=dialect)
            if result.errors and result.errors[0].code == "parse_error":
                continue  # sqlglot wants other arguments: try the next shape
            # Refused, or rewritten by sqlglot into something that no longer calls it (SQLite has no
            # CURRENT_SCHEMA(): sqlglot writes the literal 'main').
            refused = any(e.code == "forbidden_function" for e in result.errors)
            if not refused and name.lower() in result.sql.lower():
                passed.append((name, result.sql))
            break
    assert passed == []


def test_no_allowed_name_belongs_to_a_dangerous_family() -> None:
    families = re.compile(
        r"^(pg_|lo_|dblink|txid|sqlite_|wsrep|master_|source_|binlog|load_|set_config$|current_setting$)"
        r"|sleep|(^|_)lock|_xml|xml_|xact|snapshot|replication|_wal|backup|privilege|file|sequence"
        r"|^(nextval|currval|setval|lastval|setseed|benchmark|version|user|database|schema|connection_id)$"
    )
    offenders = {n for names in (SQLITE, POSTGRES, MYSQL) for n in names if families.search(n)}
    assert offenders == set()


# --- PostgreSQL: pg_proc ----------------------------------------------------------------------------------

# Argument types through which a function reaches a database object by name: table_to_xml(regclass, ...).
_BY_NAME_TYPES = {"regclass", "regnamespace", "regproc", "regprocedure", "regrole", "refcursor"}


@pytest.fixture(scope="module")
def pg_proc(pg_admin: sa.Engine) -> dict[str, list[Any]]:
    """Every function of the server's catalogue, by name: schema, kind, volatility, PUBLIC's EXECUTE, types."""
    with pg_admin.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT p.proname, n.nspname, p.prokind, p.provolatile, "
            "has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute, "
            "pg_get_function_identity_arguments(p.oid) AS arguments, "
            "ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) AS t) AS types "
            "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        ).fetchall()
    by_name: dict[str, list[Any]] = {}
    for row in rows:
        by_name.setdefault(row.proname, []).append(row)
    return by_name


def test_postgres_catalogue_is_the_whole_of_pg_proc(pg_proc: dict[str, list[Any]]) -> None:
    assert len(pg_proc) > 2000  # PostgreSQL 15 has about 2,650 distinct names
    assert {"ts_stat", "ts_rewrite", "table_to_xml", "txid_current", "pg_read_file"} <= set(pg_proc)


def test_every_allowed_postgres_function_is_a_public_builtin(pg_proc: dict[str, list[Any]]) -> None:
    problems = []
    for name in sorted(POSTGRES):
        overloads = pg_proc.get(name)
        if not overloads:
            problems.append(f"{name}: not in pg_proc")
            continue
        for row in overloads:
            signature = f"{name}({row.arguments})"
            if row.nspname != "pg_catalog":
                problems.append(f"{signature}: in schema {row.nspname}, not pg_catalog")
            if row.prokind not in ("f", "a", "w"):
                problems.append(f"{signature}: kind {row.prokind!r}, not a function, aggregate or window")
            if not row.public_execute:
                problems.append(f"{signature}: PUBLIC may not execute it (a privileged function)")
            if _BY_NAME_TYPES & set(row.types):
                problems.append(f"{signature}: takes a database object by name")
    assert problems == []


def test_every_volatile_allowed_postgres_function_is_justified(pg_proc: dict[str, list[Any]]) -> None:
    volatile = {name for name in POSTGRES for row in pg_proc.get(name, []) if row.provolatile == "v"}
    assert sorted(volatile - set(POSTGRES_VOLATILE)) == [], "allowed but volatile, with no reason given"
    assert sorted(set(POSTGRES_VOLATILE) - volatile) == [], (
        "a reason for a function that is not allowed-volatile"
    )
    assert all(reason.strip() for reason in POSTGRES_VOLATILE.values())


# --- MariaDB / MySQL: SQL_FUNCTIONS, help topics and the parser --------------------------------------------


@pytest.fixture(scope="module")
def mysql_catalogue(mysql_admin: sa.Engine) -> set[str]:
    """Built-in names the server documents: information_schema.SQL_FUNCTIONS (MariaDB 10.6+) and the function
    topics of its help tables ("IF Function", "MATCH AGAINST", "BIT\\_COUNT" -> if, match, bit_count)."""
    names: set[str] = set()
    with mysql_admin.connect() as conn:
        try:
            names |= {
                r[0].lower()
                for r in conn.exec_driver_sql("SELECT FUNCTION FROM information_schema.SQL_FUNCTIONS")
            }
        except sa.exc.DBAPIError:
            pass  # MySQL has no such table; its help tables still list the functions
        topics = conn.exec_driver_sql("SELECT name FROM mysql.help_topic").scalars().all()
    for topic in topics:
        words = topic.replace("\\", "").lower().split()
        if len(words) == 2 and words[1] in ("function", "against"):
            words = words[:1]
        if len(words) == 1 and re.fullmatch(r"[a-z_][a-z0-9_]*", words[0]):
            names.add(words[0])
    assert len(names) > 300
    return names


@pytest.fixture(scope="module")
def mysql_probe(mysql_admin: sa.Engine) -> Iterator[Any]:
    """Whether the server's parser knows a function: PREPARE (nothing runs) of a call in an empty database,
    so that no stored function can answer for a built-in. Returns the MySQL error number, 0 when it prepared."""
    database = unique("t2s_fn")
    with mysql_admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {database}")
        conn.exec_driver_sql(f"USE {database}")

        def probe(name: str) -> int:
            try:
                conn.exec_driver_sql(f"PREPARE t2s_probe FROM 'SELECT {name}()'")
            except sa.exc.DBAPIError as e:
                return int(e.orig.args[0])
            return 0

        try:
            yield probe
        finally:
            conn.exec_driver_sql(f"DROP DATABASE {database}")


_ER_SP_DOES_NOT_EXIST = 1305  # "FUNCTION db.name does not exist": the parser took it for a stored function


def test_every_allowed_mysql_function_is_a_server_builtin(
    mysql_catalogue: set[str], mysql_probe: Any
) -> None:
    unknown = sorted(n for n in MYSQL - MYSQL_ONLY if mysql_probe(n) == _ER_SP_DOES_NOT_EXIST)
    unlisted = sorted(n for n in MYSQL - MYSQL_ONLY if n not in mysql_catalogue)
    assert unknown == [], "the server does not know these"
    assert unlisted == [], "the server's catalogue does not list these"


def test_mysql_only_names_are_what_mariadb_lacks(mysql_admin: sa.Engine, mysql_probe: Any) -> None:
    with mysql_admin.connect() as conn:
        version = conn.exec_driver_sql("SELECT VERSION()").scalar()
    if "mariadb" not in str(version).lower():
        pytest.skip(f"not MariaDB: {version}")
    assert {n: mysql_probe(n) for n in MYSQL_ONLY} == dict.fromkeys(MYSQL_ONLY, _ER_SP_DOES_NOT_EXIST)


# --- SQLite: pragma_function_list ---------------------------------------------------------------------------


def test_every_allowed_sqlite_function_is_in_the_library() -> None:
    with sqlite3.connect(":memory:") as conn:
        functions = {r[0].lower() for r in conn.execute("SELECT name FROM pragma_function_list")}
        modules = {r[0].lower() for r in conn.execute("SELECT name FROM pragma_module_list")}
    assert len(functions) > 100
    version = sqlite3.sqlite_version_info
    missing = []
    for name in sorted(SQLITE):
        if SQLITE_SINCE.get(name, (0, 0, 0)) > version:
            continue  # newer than this library: it cannot confirm the name
        found = name in modules if name in SQLITE_TABLE_FUNCTIONS else name in functions
        if not found:
            missing.append(name)
    assert missing == []


def test_sql_forms_are_not_sqlite_escape_hatches() -> None:
    with sqlite3.connect(":memory:") as conn:
        functions = {r[0].lower() for r in conn.execute("SELECT name FROM pragma_function_list")}
    # The forms SQLite does have as functions are plain value functions.
    assert SQL_FORMS & functions <= {
        "coalesce", "nullif", "trim", "substring", "current_date", "current_time", "current_timestamp",
    }  # fmt: skip


# --- qualifiers, read from the same servers ------------------------------------------------------------------


@pytest.fixture
def pg_two_schemas(pg_admin: sa.Engine) -> Iterator[tuple[str, str]]:
    """An exposed schema and a hidden one, each with a table `t`."""
    visible, hidden = unique("t2s_vis"), unique("t2s_hid")
    with pg_admin.begin() as conn:
        for schema in (visible, hidden):
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            conn.exec_driver_sql(f"CREATE TABLE {schema}.t (id INT PRIMARY KEY, secret TEXT)")
    try:
        yield visible, hidden
    finally:
        with pg_admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {visible} CASCADE")
            conn.exec_driver_sql(f"DROP SCHEMA {hidden} CASCADE")


def test_postgres_introspection_exposes_its_schema_only(pg_two_schemas: tuple[str, str]) -> None:
    visible, hidden = pg_two_schemas
    schema = introspect(PG_URL, schema_name=visible, sample_values=0)
    assert schema.qualifiers == [visible]
    assert validate_sql(f"SELECT id FROM {visible}.t", dialect="postgres", schema=schema).valid
    result = validate_sql(f"SELECT secret FROM {hidden}.t", dialect="postgres", schema=schema)
    assert [(e.code, e.message) for e in result.errors] == [
        ("forbidden_schema", f"schema {hidden!r} is not exposed; only {visible!r} is")
    ]


@pytest.fixture
def mysql_two_databases(mysql_admin: sa.Engine) -> Iterator[tuple[str, str]]:
    visible, hidden = unique("t2s_vis"), unique("t2s_hid")
    with mysql_admin.begin() as conn:
        for database in (visible, hidden):
            conn.exec_driver_sql(f"CREATE DATABASE {database}")
            conn.exec_driver_sql(f"CREATE TABLE {database}.t (id INT PRIMARY KEY, secret TEXT)")
    try:
        yield visible, hidden
    finally:
        with mysql_admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {visible}")
            conn.exec_driver_sql(f"DROP DATABASE {hidden}")


def test_mysql_introspection_exposes_its_database_only(mysql_two_databases: tuple[str, str]) -> None:
    visible, hidden = mysql_two_databases
    url = sa.engine.make_url(MYSQL_URL).set(database=visible).render_as_string(hide_password=False)
    schema = introspect(url, sample_values=0)
    assert schema.qualifiers == [visible]
    assert validate_sql(f"SELECT id FROM {visible}.t", dialect="mysql", schema=schema).valid
    result = validate_sql(f"SELECT secret FROM {hidden}.t", dialect="mysql", schema=schema)
    assert [(e.code, e.message) for e in result.errors] == [
        ("forbidden_schema", f"database {hidden!r} is not exposed; only {visible!r} is")
    ]


def test_sqlite_introspection_exposes_main(sqlite_file: Path) -> None:
    schema = introspect(f"sqlite:///{sqlite_file}", sample_values=0)
    assert schema.qualifiers == ["main"]
    assert validate_sql("SELECT name FROM main.t", schema=schema).valid
    assert (
        validate_sql("SELECT sql FROM main.sqlite_master", schema=schema).errors[0].code == "forbidden_schema"
    )


# --- no false refusals on real gold queries ------------------------------------------------------------------


def _dataset(name: str, env_var: str) -> Path:
    directory = Path(os.environ.get(env_var) or SHARED_DIR / name)
    if not directory.is_dir():
        pytest.skip(f"{name} is not at {directory}; set {env_var}")
    return directory


def _spider_schemas(tables_json: Path) -> dict[str, DatabaseSchema]:
    """Spider's own schema file, as introspection would read each SQLite database (qualifier "main")."""
    schemas = {}
    for entry in json.loads(tables_json.read_text()):
        columns: dict[int, list[Column]] = {}
        for table_index, column in entry["column_names_original"]:
            if table_index >= 0:
                columns.setdefault(table_index, []).append(Column(name=column))
        tables = [
            Table(name=name, columns=columns[i]) for i, name in enumerate(entry["table_names_original"])
        ]
        schemas[entry["db_id"]] = DatabaseSchema(tables=tables, name=entry["db_id"], qualifiers=["main"])
    return schemas


def _unsafe_refusals(items: list[tuple[str, DatabaseSchema | None]], dialect: str) -> list[tuple[str, str]]:
    refused = []
    for sql, schema in items:
        result = validate_sql(sql, dialect=dialect, schema=schema)
        refused += [(sql, e.message) for e in result.errors if is_unsafe(e.code)]
    return refused


@pytest.mark.parametrize(("split", "questions"), [("train", "train_spider.json"), ("dev", "dev_public.json")])
def test_spider_gold_queries_pass_the_guard(split: str, questions: str) -> None:
    directory = _dataset("spider", "SPIDER_DIR") / split
    schemas = _spider_schemas(directory / "tables.json")
    pairs = {(q["db_id"], q["query"]) for q in json.loads((directory / questions).read_text())}
    items = [(query, schemas.get(db_id)) for db_id, query in sorted(pairs)]
    assert len(items) > 200
    assert _unsafe_refusals(items, "sqlite") == []


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_sql_eval_gold_queries_pass_the_guard(dialect: str) -> None:
    path = _dataset("sql-eval", "SQL_EVAL_DIR") / f"questions_gen_{dialect}.csv"
    with path.open(newline="") as handle:
        queries = [a for row in csv.DictReader(handle) for a in expand_gold_alternatives(row["query"])]
    assert len(queries) > 150
    refused = [(sql, e.message) for sql in queries for e in validate_sql(sql, dialect=dialect).errors]
    assert refused == []
