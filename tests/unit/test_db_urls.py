"""Database URLs: secrets in the user part, the query string and an options string never reach a message."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy.engine import make_url

from text2sql.db_urls import is_secret_key, masked_url, parse_url, scrub, url_secrets, with_driver

SECRET = "s3cr3t-Pa55/word@x"  # '/' and '@' must be percent-encoded in a URL
ENCODED = quote(SECRET, safe="")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"postgresql+psycopg://app:{ENCODED}@db.example:5432/shop", id="user-part"),
        pytest.param(f"postgresql+psycopg://app@db.example/shop?password={ENCODED}", id="query-password"),
        pytest.param(f"postgresql://app@db.example/shop?sslmode=require&sslpassword={ENCODED}", id="sslpassword"),
        pytest.param(f"mysql+pymysql://app@db.example/shop?passwd={ENCODED}&charset=utf8mb4", id="passwd"),
        pytest.param(f"mysql+pymysql://app@db.example/shop?PWD={ENCODED}", id="pwd-upper-case"),
        pytest.param(f"postgresql://app@db.example/shop?token={ENCODED}", id="token"),
        pytest.param(f"postgresql://app@db.example/shop?api_key={ENCODED}", id="api-key"),
        pytest.param(f"postgresql://app@db.example/shop?access-key={ENCODED}", id="access-key"),
        pytest.param(f"postgresql://app@db.example/shop?client_secret={ENCODED}", id="client-secret"),
        pytest.param(
            f"postgresql://app@db.example/shop?options={quote_plus('-c app.password=' + SECRET)}", id="options"
        ),
        pytest.param(
            f"postgresql://app@db.example/shop?options={quote_plus('-c statement_timeout=5s -c my.token=' + SECRET)}",
            id="options-second-pair",
        ),
    ],
)
def test_every_place_a_secret_can_sit_is_masked(url: str) -> None:
    shown = masked_url(url)
    assert SECRET not in shown and ENCODED not in shown and quote_plus(SECRET) not in shown
    assert "***" in shown
    assert "db.example" in shown  # the rest stays readable
    assert SECRET in url_secrets(url)

    # A driver message that repeats the secret in any spelling, or the whole URL, comes out clean.
    for spelling in (SECRET, ENCODED, quote_plus(SECRET), url):
        message = scrub(f'connection to "db.example" failed: bad value "{spelling}" in {url}', url)
        assert SECRET not in message and ENCODED not in message and quote_plus(SECRET) not in message, message
        assert "db.example" in message


def test_masked_url_keeps_what_is_not_secret() -> None:
    url = f"postgresql+psycopg://app:{ENCODED}@db.example:5432/shop?sslmode=require&application_name=t2s"
    assert masked_url(url) == "postgresql+psycopg://app:***@db.example:5432/shop?application_name=t2s&sslmode=require"
    assert masked_url("sqlite:///data/shop.db") == "sqlite:///data/shop.db"
    assert masked_url(make_url("mysql+pymysql://root@localhost/test")) == "mysql+pymysql://root@localhost/test"


def test_options_without_secrets_are_left_alone() -> None:
    url = "postgresql://app@db/shop?options=" + quote_plus("-c statement_timeout=5000")
    assert url_secrets(url) == []
    assert "statement_timeout" in masked_url(url) and "***" not in masked_url(url)


def test_invalid_url_is_never_echoed() -> None:
    with pytest.raises(ValueError, match="not a valid database URL") as info:
        parse_url(f"::{SECRET}::")
    assert SECRET not in str(info.value)
    assert masked_url(f"::{SECRET}::") == "(an invalid database URL)"


def test_secrets_of_an_unparseable_url_are_still_scrubbed() -> None:
    raw = "postgresql://app:hunter22@db.example:notaport/shop?password=other-secret"
    message = scrub(f"could not use {raw}: hunter22 / other-secret", raw)
    assert "hunter22" not in message and "other-secret" not in message


def test_a_short_secret_is_masked_only_where_it_stands_alone() -> None:
    url = "postgresql://app:ab@db/shop"
    assert scrub("password ab was rejected for table abc", url) == "password *** was rejected for table abc"


@pytest.mark.parametrize("key", ["password", "PASSWORD", "sslpassword", "db_password", "passwd", "pwd", "token",
                                 "access_token", "secret", "client_secret", "api_key", "apikey", "access_key",
                                 "private_key", "passphrase"])
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["sslmode", "host", "application_name", "options", "charset", "connect_timeout"])
def test_keys_that_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)


def test_drivers_are_the_ones_execution_uses() -> None:
    assert with_driver(make_url("postgresql://u@h/db")).drivername == "postgresql+psycopg"
    assert with_driver(make_url("postgresql+psycopg2://u@h/db")).drivername == "postgresql+psycopg"
    assert with_driver(make_url("mysql://u@h/db")).drivername == "mysql+pymysql"
    assert with_driver(make_url("mariadb+mysqldb://u@h/db")).drivername == "mariadb+pymysql"
    assert with_driver(make_url("sqlite:///x.db")).drivername == "sqlite"
