"""A password anywhere in a database URL (user part, ?password=, an options string) never appears in what
introspection, execution or the account check raise or log, when the real servers refuse the connection."""

from __future__ import annotations

import logging
from urllib.parse import quote_plus

import pytest
from sqlalchemy.engine import make_url

from deployments.databases import DatabaseConfig
from deployments.errors import DatabaseUnavailable
from deployments.protocol.sql import SqlGenerateRequest
from deployments.schema_resolver import SchemaResolver
from text2sql.execution import ExecutionError, dispose_engines, execute_read_only
from text2sql.privileges import AccountCheckError, check_account
from text2sql.schema.errors import SchemaError
from text2sql.schema.introspect import introspect

SECRET = "s3cret-Qu3ry-pw"


def failing_urls(server_url: str) -> list[str]:
    """URLs to the real server that fail: a closed port, a database that does not exist, a wrong password."""
    base = make_url(server_url)
    closed = base.set(port=1)
    return [
        closed.update_query_dict({"password": SECRET}).render_as_string(hide_password=False),
        closed.set(password=SECRET).render_as_string(hide_password=False),
        base.set(database="t2s_no_such_database").update_query_dict({"password": SECRET}).render_as_string(
            hide_password=False
        ),
        base.set(password=SECRET).render_as_string(hide_password=False),  # trust auth may accept it: fine too
    ]


@pytest.fixture(params=["pg", "mysql"])
def server_url(request: pytest.FixtureRequest) -> str:
    kind = request.param
    engine = request.getfixturevalue("pg_engine" if kind == "pg" else "mysql_engine")  # skips when unreachable
    return engine.url.render_as_string(hide_password=False)


def test_introspection_errors_never_show_the_password(server_url: str, caplog: pytest.LogCaptureFixture) -> None:
    failures = 0
    for url in failing_urls(server_url):
        with caplog.at_level(logging.DEBUG):
            try:
                introspect(url, sample_values=0)
            except SchemaError as e:
                failures += 1
                assert SECRET not in str(e), str(e)
                assert quote_plus(SECRET) not in str(e)
    assert failures >= 3
    assert SECRET not in caplog.text


def test_execution_errors_never_show_the_password(server_url: str, caplog: pytest.LogCaptureFixture) -> None:
    failures = 0
    try:
        for url in failing_urls(server_url):
            with caplog.at_level(logging.DEBUG):
                try:
                    execute_read_only(url, "SELECT 1", timeout_s=5)
                except ExecutionError as e:
                    failures += 1
                    assert SECRET not in str(e), str(e)
    finally:
        dispose_engines()
    assert failures >= 3
    assert SECRET not in caplog.text


def test_account_check_errors_never_show_the_password(server_url: str, caplog: pytest.LogCaptureFixture) -> None:
    failures = 0
    for url in failing_urls(server_url):
        with caplog.at_level(logging.DEBUG):
            try:
                check_account(url, connect_timeout_s=5)
            except AccountCheckError as e:
                failures += 1
                assert SECRET not in str(e), str(e)
    assert failures >= 3
    assert SECRET not in caplog.text


def test_the_503_body_never_shows_a_query_string_password(server_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = failing_urls(server_url)[0]
    resolver = SchemaResolver({"shop": DatabaseConfig(url=url, timeout_s=2)})
    with caplog.at_level(logging.DEBUG), pytest.raises(DatabaseUnavailable) as info:
        resolver.resolve(SqlGenerateRequest(question="q", database="shop"))
    assert info.value.status_code == 503
    assert SECRET not in info.value.message and "password=***" in info.value.message
    assert SECRET not in caplog.text
