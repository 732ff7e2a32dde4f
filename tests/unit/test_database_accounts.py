"""Execution is refused on a database whose account can do more than read, unless the config allows it;
accounts are checked once, and one that cannot be checked is never taken for read-only."""

from __future__ import annotations

import threading
import time

import pytest

from deployments.builder import parse_app_config
from deployments.database_accounts import DatabaseAccounts
from deployments.databases import DatabaseConfig
from deployments.errors import AccountUnchecked, PrivilegedAccount
from deployments.http_errors import exception_to_response
from text2sql.privileges import AccountCheckError, AccountReport, ExcessRight

SUPERUSER = AccountReport(
    backend="postgresql",
    account="postgres",
    excess=[ExcessRight(right="SUPERUSER", allows="reads server files", fix='ALTER ROLE "postgres" NOSUPERUSER;')],
    read_only_setup="CREATE ROLE text2sql_reader LOGIN;",
)
READER = AccountReport(backend="postgresql", account="reader")


class Checks:
    """A stand-in for `check_account`: answers from a table by URL, and counts its calls."""

    def __init__(self, answers: dict[str, AccountReport | Exception], *, delay_s: float = 0.0) -> None:
        self.answers = answers
        self.delay_s = delay_s
        self.calls: list[str] = []

    def __call__(self, url: str) -> AccountReport:
        self.calls.append(url)
        time.sleep(self.delay_s)
        answer = self.answers[url]
        if isinstance(answer, Exception):
            raise answer
        return answer


def databases(**allow: bool) -> dict[str, DatabaseConfig]:
    return {
        name: DatabaseConfig(url=f"postgresql+psycopg://u@h/{name}", allow_privileged_account=allowed)
        for name, allowed in allow.items()
    }


def test_privileged_account_is_refused_with_the_rights_and_the_override() -> None:
    accounts = DatabaseAccounts(databases(shop=False), check=Checks({"postgresql+psycopg://u@h/shop": SUPERUSER}))
    with pytest.raises(PrivilegedAccount) as info:
        accounts.ensure_may_execute("shop")
    assert info.value.status_code == 403
    message = info.value.message
    assert "'shop'" in message and "SUPERUSER" in message and "allow_privileged_account: true" in message
    assert "NOSUPERUSER" in message and "docs/read-only-accounts.md" in message
    body = exception_to_response(info.value)
    assert body.status_code == 403 and b'"privileged_account"' in body.body
    listing = accounts.listing("shop")
    assert listing["privileged"] is True and "execution is refused" in listing["warnings"][0]


def test_override_executes_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    accounts = DatabaseAccounts(databases(shop=True), check=Checks({"postgresql+psycopg://u@h/shop": SUPERUSER}))
    with caplog.at_level("WARNING"):
        accounts.ensure_may_execute("shop")
    assert "allow_privileged_account is true" in caplog.text and "NOSUPERUSER" in caplog.text
    listing = accounts.listing("shop")
    assert listing["privileged"] is True
    assert "SUPERUSER" in listing["warnings"][0] and "allow_privileged_account is true" in listing["warnings"][0]


def test_read_only_account_runs_without_warnings() -> None:
    accounts = DatabaseAccounts(databases(shop=False), check=Checks({"postgresql+psycopg://u@h/shop": READER}))
    accounts.ensure_may_execute("shop")
    assert accounts.listing("shop") == {"privileged": False, "warnings": []}


def test_unreachable_account_is_never_taken_for_read_only_and_is_checked_again() -> None:
    checks = Checks({"postgresql+psycopg://u@h/shop": AccountCheckError("cannot connect: refused")})
    accounts = DatabaseAccounts(databases(shop=True), check=checks)
    for _ in range(2):
        with pytest.raises(AccountUnchecked) as info:
            accounts.ensure_may_execute("shop")
        assert info.value.status_code == 503 and "refused" in info.value.message
    assert len(checks.calls) == 2  # failures are not cached
    assert accounts.listing("shop")["privileged"] is None
    checks.answers["postgresql+psycopg://u@h/shop"] = READER  # the server came up
    accounts.ensure_may_execute("shop")
    accounts.ensure_may_execute("shop")
    assert len(checks.calls) == 3  # a report is cached


def test_each_database_is_checked_once_however_many_ask() -> None:
    checks = Checks({"postgresql+psycopg://u@h/shop": READER}, delay_s=0.2)
    accounts = DatabaseAccounts(databases(shop=False), check=checks)
    accounts.check_in_background()
    threads = [threading.Thread(target=accounts.ensure_may_execute, args=("shop",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert checks.calls == ["postgresql+psycopg://u@h/shop"]


def test_unset_url_environment_variable_is_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T2S_NOT_SET", raising=False)
    accounts = DatabaseAccounts({"shop": DatabaseConfig(url_env="T2S_NOT_SET")}, check=Checks({}))
    with pytest.raises(AccountUnchecked, match="T2S_NOT_SET is not set"):
        accounts.ensure_may_execute("shop")


def test_bundled_sample_needs_no_check() -> None:
    checks = Checks({})
    accounts = DatabaseAccounts({"chinook": DatabaseConfig(url="builtin:chinook")}, check=checks)
    accounts.ensure_may_execute("chinook")
    assert checks.calls == [] and accounts.listing("chinook") == {"privileged": False, "warnings": []}


def test_config_field_defaults_to_refusing() -> None:
    assert DatabaseConfig(url="sqlite:///x.db").allow_privileged_account is False
    config = parse_app_config(
        {"models": [{"name": "m", "source": "/models/m.gguf"}], "databases": {"a": {"url": "sqlite:///a.db", "allow_privileged_account": True}}}
    )
    assert config.databases["a"].allow_privileged_account is True
