"""API key checks: who may call what, and which key name is counted."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from deployments.auth import AuthConfigError, AuthSettings, KeyChecker
from deployments.errors import Forbidden, Unauthorized

USER_KEY = "user-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"


@pytest.fixture()
def checker(monkeypatch) -> KeyChecker:
    monkeypatch.setenv("T2S_ADMIN_KEY", ADMIN_KEY)
    return KeyChecker(
        AuthSettings.model_validate(
            {"api_keys": [{"name": "analytics", "key": USER_KEY}], "admin_keys": [{"name": "ops", "key_env": "T2S_ADMIN_KEY"}]}
        )
    )


def test_open_without_keys():
    assert KeyChecker(AuthSettings()).check("/v1/sql/generate", None) == "anonymous"


def test_user_key_opens_v1_and_is_named(checker):
    assert checker.check("/v1/sql/generate", f"Bearer {USER_KEY}") == "analytics"
    assert checker.check("/v1/models", f"bearer {USER_KEY}") == "analytics"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic dXNlcjpwYXNz", f"Bearer {USER_KEY}x", "Bearer wrong"])
def test_missing_or_wrong_key_is_401_without_echo(checker, header):
    with pytest.raises(Unauthorized) as info:
        checker.check("/v1/chat/completions", header)
    assert info.value.status_code == 401 and info.value.headers["WWW-Authenticate"] == "Bearer"
    assert USER_KEY not in info.value.message and "wrong" not in info.value.message


def test_admin_endpoints_need_the_admin_key(checker):
    with pytest.raises(Forbidden):
        checker.check("/v1/admin/schema/refresh", f"Bearer {USER_KEY}")
    with pytest.raises(Unauthorized):
        checker.check("/v1/admin/schema/refresh", None)
    assert checker.check("/v1/admin/schema/refresh", f"Bearer {ADMIN_KEY}") == "ops"


def test_health_metrics_and_page_stay_open(checker):
    for path in ("/health", "/metrics", "/ui/", "/"):
        assert checker.check(path, None) == "anonymous"


def test_key_from_a_missing_environment_variable_fails_at_start(monkeypatch):
    monkeypatch.delenv("T2S_NOPE", raising=False)
    with pytest.raises(AuthConfigError, match="T2S_NOPE"):
        KeyChecker(AuthSettings.model_validate({"api_keys": [{"name": "a", "key_env": "T2S_NOPE"}]}))


def test_config_validation():
    with pytest.raises(ValidationError, match="exactly one"):
        AuthSettings.model_validate({"api_keys": [{"name": "a"}]})
    with pytest.raises(ValidationError, match="repeated"):
        AuthSettings.model_validate({"api_keys": [{"name": "a", "key": USER_KEY}], "admin_keys": [{"name": "a", "key": ADMIN_KEY}]})
    with pytest.raises(ValidationError):
        AuthSettings.model_validate({"api_keys": [{"name": "a", "key": "short"}]})
