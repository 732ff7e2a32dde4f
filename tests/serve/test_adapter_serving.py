"""Adapters served by name, on a real Serve app: the admin API, routing by `<base>:<name>` and `<name>`, Serve's
model multiplexing (requests for an adapter go to the replica that holds it), the per-replica LRU, and deletion
reaching every replica.

The engine is a fake that answers `<adapter>@<pid>`, so each answer says which adapter and which replica served
it. Real adapters on the real engines (llama.cpp and Transformers, served) are in tests/serve/test_adapters_real.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from ray import serve

from deployments.builder import build_app_with_engines
from tests.fakes import FakeAdapterEngine

BASE = "base"
ADMIN_KEY = "sk-admin-adapters-4c1e9b7a2d"
USER_KEY = "sk-user-adapters-8f2a6c3e1b"
APP = "adapters"


def adapter_dir(root: Path, name: str) -> str:
    path = root / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    return str(path)


@pytest.fixture(scope="module")
def adapters_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("adapters")


@pytest.fixture(scope="module")
def base_url(ray_serve, adapters_root) -> str:
    args = {
        "auth": {"api_keys": [{"name": "user", "key": USER_KEY}], "admin_keys": [{"name": "ops", "key": ADMIN_KEY}]},
        "adapters": [{"name": "from-config", "base": BASE, "path": adapter_dir(adapters_root, "from-config")}],
        "models": [
            {
                "name": BASE, "source": "/unused/base.gguf", "num_replicas": 2, "max_adapters_per_replica": 2,
                "max_ongoing_requests": 4, "ray_actor_options": {"num_cpus": 0},
            },
            {"name": "other", "source": "/unused/other.gguf", "ray_actor_options": {"num_cpus": 0}},
        ],
    }
    engines = {BASE: FakeAdapterEngine(), "other": FakeAdapterEngine()}
    return ray_serve(build_app_with_engines(args, engines=engines), name=APP)


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


def user() -> dict[str, str]:
    return {"Authorization": f"Bearer {USER_KEY}"}


def ask(base_url: str, model: str) -> requests.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
    return requests.post(f"{base_url}/v1/chat/completions", json=body, headers=user(), timeout=60)


def answer(base_url: str, model: str) -> tuple[str, str]:
    response = ask(base_url, model)
    assert response.status_code == 200, response.text
    assert response.json()["model"] in (model, f"{BASE}:{model}")
    adapter, pid = response.json()["choices"][0]["message"]["content"].split("@")
    return adapter, pid


def register(base_url: str, name: str, path: str, **extra) -> requests.Response:
    body = {"name": name, "base": BASE, "path": path, **extra}
    return requests.post(f"{base_url}/v1/adapters", json=body, headers=admin(), timeout=60)


def loaded_everywhere(base_url: str) -> set[str]:
    """The adapters any replica of the base model holds (asked often enough to reach both replicas)."""
    handle = serve.get_deployment_handle(BASE, app_name=APP)
    return {name for _ in range(12) for name in handle.stats.remote().result()["adapters"]}


def test_a_configured_adapter_is_served_by_both_its_names(base_url):
    assert answer(base_url, "from-config")[0] == f"{BASE}:from-config"
    assert answer(base_url, f"{BASE}:from-config")[0] == f"{BASE}:from-config"
    assert answer(base_url, BASE)[0] == "base"  # the base model itself, no adapter


def test_models_lists_bases_and_adapters_with_base_and_template(base_url):
    cards = {c["id"]: c for c in requests.get(f"{base_url}/v1/models", headers=user(), timeout=30).json()["data"]}
    assert cards[BASE]["prompt_template"] == "qwen-chat" and cards[BASE]["parent"] is None
    adapter = cards[f"{BASE}:from-config"]
    assert adapter["parent"] == BASE and adapter["prompt_template"] == "qwen-chat" and adapter["adapter"] == "from-config"


def test_requests_for_an_adapter_stay_on_the_replica_that_holds_it(base_url, adapters_root):
    """Four adapters, two replicas holding two each: with multiplexing each adapter keeps to the replica that
    loaded it. Spread at random, a window of 20 requests puts nearly every adapter on both replicas (about 7.8 of 8
    adapter-replica pairs; at most 5 pairs happens about once in a thousand windows).

    Serve's router prefers the holder but does not insist: when the holder misses its queue-length probe (a busy
    machine), the request goes elsewhere, that replica loads the adapter and its LRU evicts another, and the routers
    learn the new placement only from the controller's next broadcast. So the placement may take a few windows to
    settle; once it has, a window keeps each adapter on one replica (one misplaced request allowed)."""
    names = [f"sticky-{i}" for i in range(4)]
    for name in names:
        assert register(base_url, name, adapter_dir(adapters_root, name)).status_code == 201
    for name in names:
        answer(base_url, name)
    windows = []
    for _ in range(4):
        # A replica announces what it holds to the routers in the background (through Serve's controller).
        time.sleep(3)
        pairs = {answer(base_url, name) for _ in range(5) for name in names}
        windows.append(sorted(pairs))
        if len(pairs) <= len(names) + 1:
            break
    for name in names:
        requests.delete(f"{base_url}/v1/adapters/{name}", headers=admin(), timeout=30)
    assert len(windows[-1]) <= len(names) + 1, f"adapters kept moving between replicas, window by window: {windows}"


def test_register_serve_and_delete_without_a_restart(base_url, adapters_root):
    created = register(base_url, "sales", adapter_dir(adapters_root, "sales"))
    assert created.status_code == 201, created.text
    assert created.json()["model_id"] == f"{BASE}:sales" and created.json()["load_ms"] >= 0
    assert answer(base_url, "sales")[0] == f"{BASE}:sales"

    deleted = requests.delete(f"{base_url}/v1/adapters/sales", headers=admin(), timeout=30)
    assert deleted.status_code == 200 and deleted.json()["deleted"] == f"{BASE}:sales"
    gone = ask(base_url, "sales")
    assert gone.status_code == 404 and "sales" in gone.json()["error"]["message"]
    deadline = time.monotonic() + 15
    while f"{BASE}:sales" in loaded_everywhere(base_url):
        assert time.monotonic() < deadline, "a replica still holds the deleted adapter"
        time.sleep(0.5)
    assert requests.delete(f"{base_url}/v1/adapters/sales", headers=admin(), timeout=30).status_code == 404


def test_a_replica_holds_at_most_its_lru_size(base_url, adapters_root):
    for name in ("lru-a", "lru-b", "lru-c"):
        assert register(base_url, name, adapter_dir(adapters_root, name)).status_code == 201
        answer(base_url, name)
    handle = serve.get_deployment_handle(BASE, app_name=APP)
    for _ in range(12):
        assert len(handle.stats.remote().result()["adapters"]) <= 2


def test_registration_errors_are_4xx_and_leave_nothing_behind(base_url, adapters_root):
    good = adapter_dir(adapters_root, "checked")
    conflict = register(base_url, "checked", good, prompt_template="sqlcoder-llama3")
    assert conflict.status_code == 409 and "prompt template" in conflict.json()["error"]["message"]
    assert register(base_url, "from-config", good).status_code == 409  # the name is taken
    assert register(base_url, "other", good).status_code == 409  # a model's name

    unknown_base = requests.post(
        f"{base_url}/v1/adapters", json={"name": "x", "base": "nope", "path": good}, headers=admin(), timeout=30
    )
    assert unknown_base.status_code == 404

    empty = adapters_root / "empty"
    empty.mkdir()
    unusable = register(base_url, "broken", str(empty))
    assert unusable.status_code == 422 and "adapter_config.json" in unusable.json()["error"]["message"]
    listed = requests.get(f"{base_url}/v1/adapters", headers=admin(), timeout=30).json()["data"]
    assert "broken" not in {a["name"] for a in listed}
    assert ask(base_url, "broken").status_code == 404

    bad_name = register(base_url, "has space", good)
    assert bad_name.status_code == 422 and bad_name.json()["error"]["param"] == "name"


def test_only_admins_manage_adapters(base_url, adapters_root):
    body = {"name": "sneaky", "base": BASE, "path": adapter_dir(adapters_root, "sneaky")}
    assert requests.post(f"{base_url}/v1/adapters", json=body, headers=user(), timeout=30).status_code == 403
    assert requests.delete(f"{base_url}/v1/adapters/from-config", headers=user(), timeout=30).status_code == 403
    assert requests.get(f"{base_url}/v1/adapters", headers=user(), timeout=30).status_code == 403
