"""Database configs: URL sources, dialects, and credentials that never leak into errors or logs."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from deployments.databases import DatabaseConfig, DatabaseConfigError
from deployments.errors import DatabaseUnavailable, UnknownDatabase
from deployments.protocol.sql import SqlGenerateRequest
from deployments.schema_resolver import SchemaResolver

SECRET = "s3cr3t-Pa55"


def test_exactly_one_url_source():
    with pytest.raises(ValidationError, match="exactly one"):
        DatabaseConfig()
    with pytest.raises(ValidationError, match="exactly one"):
        DatabaseConfig(url="sqlite:///x.db", url_env="X")


def test_bad_url_is_refused_without_echoing_it():
    with pytest.raises(ValidationError) as info:
        DatabaseConfig(url=f"not a url with {SECRET}")
    assert SECRET not in str(info.value).split("input_value")[0]
    with pytest.raises(ValidationError, match="oracle"):
        DatabaseConfig(url="oracle://u:p@h/db")


def test_dialects():
    assert DatabaseConfig(url="builtin:chinook").dialect() == "sqlite"
    assert DatabaseConfig(url="postgresql+psycopg://u@h/db").dialect() == "postgres"
    assert DatabaseConfig(url="mysql+pymysql://u@h/db").dialect() == "mysql"
    assert DatabaseConfig(url="mariadb+pymysql://u@h/db").dialect() == "mysql"


def test_url_from_environment(monkeypatch):
    config = DatabaseConfig(url_env="SHOP_DATABASE_URL")
    with pytest.raises(DatabaseConfigError, match="SHOP_DATABASE_URL is not set"):
        config.resolve_url()
    monkeypatch.setenv("SHOP_DATABASE_URL", "sqlite:///shop.db")
    assert config.resolve_url() == "sqlite:///shop.db" and config.dialect() == "sqlite"


def test_unreachable_database_names_no_password(caplog):
    resolver = SchemaResolver(
        {"shop": DatabaseConfig(url=f"postgresql+psycopg://app:{SECRET}@127.0.0.1:1/shop", timeout_s=2)}
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(DatabaseUnavailable) as info:
        resolver.resolve(SqlGenerateRequest(question="q", database="shop"))
    assert info.value.status_code == 503 and "shop" in info.value.message
    assert SECRET not in info.value.message
    assert SECRET not in caplog.text


def test_unknown_database_lists_the_configured_ones():
    resolver = SchemaResolver({"a": DatabaseConfig(url="sqlite:///a.db"), "b": DatabaseConfig(url="sqlite:///b.db")})
    with pytest.raises(UnknownDatabase) as info:
        resolver.resolve(SqlGenerateRequest(question="q", database="c"))
    assert info.value.status_code == 404 and "a, b" in info.value.message
