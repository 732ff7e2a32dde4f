"""API keys over a real Serve app with the real 0.5B model: 401s, a separate admin key, per-key
metrics by name, and keys that never reach a log."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest
import requests
from openai import AuthenticationError, OpenAI, PermissionDeniedError

from deployments.builder import build_app

MODEL = "qwen2.5-coder-0.5b"
USER_KEY = "sk-user-7f3a9c1e5b2d4f60a8e1"
ADMIN_KEY = "sk-admin-2b8e6d4c0a9f1e3d5c7b"
# Replicas inherit the environment Ray started with, so the key is set before the module starts Ray.
os.environ["T2S_TEST_USER_KEY"] = USER_KEY


@pytest.fixture(scope="module")
def app_args(embedded_model_path, tmp_path_factory) -> dict:
    db = tmp_path_factory.mktemp("db") / "t.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    args = {
        "databases": {"t": {"url": f"sqlite:///{db}"}},
        "auth": {
            "api_keys": [{"name": "analytics", "key_env": "T2S_TEST_USER_KEY"}],
            "admin_keys": [{"name": "ops", "key": ADMIN_KEY}],
        },
        "models": [
            {"name": MODEL, "source": str(embedded_model_path), "engine": {"n_ctx": 2048, "n_threads": 1},
             "generation": {"max_tokens": 32}, "ray_actor_options": {"num_cpus": 0.5}}
        ],
    }
    return args


@pytest.fixture(scope="module")
def base_url(ray_serve, app_args) -> str:
    return ray_serve(build_app(app_args))


def test_keys_hold_under_a_route_prefix(ray_serve, app_args, base_url):
    prefixed = ray_serve(build_app(app_args), name="prefixed", route_prefix="/t2s")
    assert prefixed.endswith("/t2s")
    assert requests.get(f"{prefixed}/v1/models", timeout=30).status_code == 401
    assert requests.get(f"{prefixed}/v1/models", headers=bearer(USER_KEY), timeout=30).status_code == 200
    assert requests.post(f"{prefixed}/v1/admin/schema/refresh", json={}, headers=bearer(USER_KEY), timeout=30).status_code == 403
    redirect = requests.get(f"{prefixed}/", allow_redirects=False, timeout=30)
    assert redirect.headers["location"] == "/t2s/ui/"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_openai_client_with_and_without_a_key(base_url):
    messages = [{"role": "user", "content": "Write SQL that counts the rows of table t."}]
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{base_url}/v1", api_key="sk-not-a-real-key-000000").chat.completions.create(model=MODEL, messages=messages)
    client = OpenAI(base_url=f"{base_url}/v1", api_key=USER_KEY)
    assert [m.id for m in client.models.list()] == [MODEL]
    reply = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=24)
    assert reply.choices[0].message.content


@pytest.mark.parametrize("path", ["/v1/models", "/v1/sql/generate", "/v1/completions", "/v1/databases"])
def test_every_v1_endpoint_needs_a_key(base_url, path):
    for headers in ({}, bearer("sk-wrong-wrong-wrong-wrong"), {"Authorization": USER_KEY}):
        response = requests.request("GET" if path in ("/v1/models", "/v1/databases") else "POST", f"{base_url}{path}",
                                    json={"question": "q", "prompt": "p"}, headers=headers, timeout=30)
        assert response.status_code == 401, (path, headers, response.text)
        assert response.json()["error"]["type"] == "authentication_error"
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_sql_with_the_user_key(base_url):
    response = requests.post(
        f"{base_url}/v1/sql/generate", json={"question": "How many rows are in t?", "database": "t"},
        headers=bearer(USER_KEY), timeout=120,
    )
    assert response.status_code == 200 and response.json()["success"], response.text


def test_unvalidated_execution_needs_an_admin_key(base_url):
    body = {"question": "How many rows are in t?", "database": "t", "validate": False, "execute": True}
    user = requests.post(f"{base_url}/v1/sql/generate", json=body, headers=bearer(USER_KEY), timeout=120)
    assert user.status_code == 403, user.text
    assert user.json()["error"]["param"] == "validate" and "admin key" in user.json()["error"]["message"]
    admin = requests.post(f"{base_url}/v1/sql/generate", json=body, headers=bearer(ADMIN_KEY), timeout=120)
    assert admin.status_code == 200, admin.text
    assert admin.json()["validated"] is False and admin.json()["rows"] is not None
    # Validation on, or nothing run: a user key is enough.
    checked = requests.post(f"{base_url}/v1/sql/generate", json={**body, "validate": True}, headers=bearer(USER_KEY), timeout=120)
    assert checked.status_code == 200, checked.text
    unrun = requests.post(f"{base_url}/v1/sql/generate", json={**body, "execute": False}, headers=bearer(USER_KEY), timeout=120)
    assert unrun.status_code == 200, unrun.text


def test_admin_key_is_separate(base_url):
    path = f"{base_url}/v1/admin/schema/refresh"
    assert requests.post(path, json={}, timeout=30).status_code == 401
    user = requests.post(path, json={}, headers=bearer(USER_KEY), timeout=30)
    assert user.status_code == 403 and user.json()["error"]["type"] == "permission_error"
    admin = requests.post(path, json={}, headers=bearer(ADMIN_KEY), timeout=30)
    assert admin.status_code == 200 and admin.json() == {"refreshed": ["t"]}
    with pytest.raises(PermissionDeniedError):
        OpenAI(base_url=f"{base_url}/v1", api_key=USER_KEY).post("/admin/schema/refresh", body={}, cast_to=dict)


def test_health_metrics_and_page_stay_open(base_url):
    assert requests.get(f"{base_url}/health", timeout=30).status_code == 200
    metrics = requests.get(f"{base_url}/metrics", timeout=30)
    assert metrics.status_code == 200
    text = metrics.text
    assert 'text2sql_requests_by_key_total{endpoint="/v1/sql/generate",key="analytics",status="200"}' in text
    assert 'key="anonymous"' in text and 'status="401"' in text
    assert USER_KEY not in text and ADMIN_KEY not in text


def test_no_key_in_any_log(base_url):
    import ray

    requests.get(f"{base_url}/v1/models", headers=bearer(USER_KEY), timeout=30)
    requests.get(f"{base_url}/v1/models", headers=bearer(USER_KEY + "-wrong"), timeout=30)
    time.sleep(2)  # let the replicas flush their log files
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    logs = [p for p in (session / "logs").rglob("*") if p.is_file()]
    assert logs, "no Ray log files found"
    for path in logs:
        content = path.read_bytes()
        assert USER_KEY.encode() not in content and ADMIN_KEY.encode() not in content, path
