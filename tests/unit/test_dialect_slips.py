"""Another dialect's functions (MySQL's CURDATE() and YEAR() on SQLite or PostgreSQL) are rewritten into the
target dialect before any re-prompt; functions nobody vetted are still refused. The rewritten queries run on a
real SQLite file and on the real PostgreSQL server."""

from __future__ import annotations

import datetime

import pytest

from tests.live_databases import PG_URL, PG_URL_ENV, reachable_engine
from tests.sqlite_files import sqlite_database
from text2sql.execution import execute_read_only
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.dialect_slips import rewrite_foreign_functions
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.rewrites import Rewrites
from text2sql.schema.introspect import introspect

THIS_YEAR = datetime.date.today().year
DDL = f"""
CREATE TABLE orders (id INTEGER PRIMARY KEY, placed TEXT, total REAL);
INSERT INTO orders VALUES (1, '{THIS_YEAR}-01-15', 10.0), (2, '{THIS_YEAR - 1}-06-01', 20.0),
                          (3, '{THIS_YEAR - 3}-03-09', 40.0), (4, '{THIS_YEAR}-02-28', 5.0);
"""
SQLITE = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_database(tmp_path_factory.mktemp("slips") / "shop.sqlite", DDL)


def checked(reply: str, database: str, *, fix: bool = True):
    return check_candidate(
        reply, dialects=SQLITE, schema=introspect(database), validate=True, rewrites=Rewrites(fix_identifiers=fix),
        target=ExecutionTarget(url=database, dialect="sqlite", max_rows=100, timeout_s=5),
    )


def test_mysql_year_and_curdate_run_on_sqlite(database) -> None:
    outcome = checked(
        "SELECT id FROM orders WHERE YEAR(placed) = YEAR(CURDATE()) ORDER BY id", database
    )
    assert outcome.ok, outcome.error
    assert [tuple(r) for r in outcome.result.rows] == [(1,), (4,)]
    assert outcome.answer_sql == (
        "SELECT id FROM orders WHERE CAST(STRFTIME('%Y', placed) AS INTEGER) = "
        "CAST(STRFTIME('%Y', CURRENT_DATE) AS INTEGER) ORDER BY id"
    )
    assert "CURDATE() (MySQL's) -> CURRENT_DATE" in outcome.fixes
    assert "YEAR(placed) (not SQLite's) -> CAST(STRFTIME('%Y', placed) AS INTEGER)" in outcome.fixes


def test_date_arithmetic_around_a_borrowed_function_runs(database) -> None:
    outcome = checked(
        "SELECT SUM(total) FROM orders WHERE placed >= DATE_SUB(CURDATE(), INTERVAL 2 YEAR)", database
    )
    assert outcome.ok, outcome.error
    expected = execute_read_only(
        database, "SELECT SUM(total) FROM orders WHERE placed >= DATE('now', '-2 years')", max_rows=1, timeout_s=5
    )
    assert outcome.result.rows == expected.rows


def test_without_fixes_the_borrowed_function_is_refused_as_before(database) -> None:
    outcome = checked("SELECT id FROM orders WHERE placed < CURDATE()", database, fix=False)
    assert outcome.code == "forbidden_function"
    assert outcome.result is None


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT load_extension('evil')",  # SQLite's own, off the list on purpose
        "SELECT pg_read_file('/etc/passwd')",  # PostgreSQL's: no other dialect makes it safe
        "SELECT my_udf(total) FROM orders",  # nobody's
        "SELECT CURDATE(); DELETE FROM orders",  # a rewrite never rescues a second statement
    ],
)
def test_functions_nobody_vetted_stay_refused(database, sql: str) -> None:
    outcome = checked(sql, database)
    assert not outcome.ok
    assert outcome.result is None
    assert execute_read_only(database, "SELECT COUNT(*) FROM orders", max_rows=1, timeout_s=5).rows[0][0] == 4


def test_a_write_with_a_borrowed_function_is_not_rewritten(database) -> None:
    outcome = checked("DELETE FROM orders WHERE placed < CURDATE()", database)
    assert outcome.code == "not_read_only"
    assert outcome.fixes == []


def test_quoted_names_elsewhere_keep_their_meaning() -> None:
    # Read as MySQL, "total" would be a string: only the borrowed call is rewritten.
    sql, notes = rewrite_foreign_functions('SELECT "total" FROM orders WHERE placed < CURDATE()', dialect="sqlite")
    assert sql == 'SELECT "total" FROM orders WHERE placed < CURRENT_DATE'
    assert notes == ["CURDATE() (MySQL's) -> CURRENT_DATE"]


def test_nothing_to_rewrite_is_none() -> None:
    assert rewrite_foreign_functions("SELECT STRFTIME('%Y', placed) FROM orders", dialect="sqlite") is None
    assert rewrite_foreign_functions("SELECT EXTRACT(YEAR FROM placed) FROM orders", dialect="postgres") is None


def test_t_sql_and_mysql_functions_run_on_postgres() -> None:
    engine = reachable_engine(PG_URL, PG_URL_ENV)
    engine.dispose()
    dialects = Dialects(generation="postgres", answer="postgres", execution="postgres")
    outcome = check_candidate(
        "SELECT CURDATE() = CAST(GETDATE() AS DATE), YEAR(CURDATE())", dialects=dialects, schema=None,
        validate=True, target=ExecutionTarget(url=PG_URL, dialect="postgres", max_rows=5, timeout_s=5),
    )
    assert outcome.ok, outcome.error
    assert [tuple(r) for r in outcome.result.rows] == [(True, THIS_YEAR)]
    assert "GETDATE() (T-SQL (SQL Server)'s) -> CURRENT_TIMESTAMP" in outcome.fixes
