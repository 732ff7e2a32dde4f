"""Shared test settings and fixtures.

Ray runs without token auth locally, and never on Redis's port 6379. `ray_serve` (a real Serve
instance per test module) and `embedded_model_path` (the real 0.5B GGUF) are used by `tests/serve/`
and `tests/browser/`.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Hub clients must fail fast here: there is no network but the package registries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

EMBEDDED_DEFAULT = "qwen2.5-coder-0.5b"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(base_url: str, *, timeout_s: float = 180, process=None) -> None:
    """The proxy answers 404 until the app is routed; ready means /health returns 200."""
    import requests

    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise TimeoutError(f"the server exited with code {process.returncode} before it was healthy")
        try:
            response = requests.get(f"{base_url}/health", timeout=5)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except (requests.ConnectionError, requests.Timeout) as e:  # a busy machine answers late: keep waiting
            last = repr(e)
        time.sleep(0.5)
    raise TimeoutError(f"{base_url}/health not ready after {timeout_s}s; last answer: {last}")


@pytest.fixture(scope="session")
def embedded_model_path() -> Path:
    """The real 0.5B GGUF, assembled from its PyPI packages (skips if they are not installed)."""
    from deployments.embedded_models import EmbeddedModelError, ensure_embedded_model

    try:
        return ensure_embedded_model(EMBEDDED_DEFAULT, progress=False)
    except EmbeddedModelError as e:
        pytest.skip(f"embedded model not available: {e}")


@pytest.fixture(scope="module")
def ray_serve() -> Iterator[Callable[..., str]]:
    """Start Ray and Serve; yields `deploy(application, name=...) -> base_url`. Shut down after the module."""
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="text2sql-tests")
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    base_url = f"http://127.0.0.1:{port}"

    def deploy(application, *, name: str = "text2sql", route_prefix: str = "/") -> str:
        serve.run(application, name=name, route_prefix=route_prefix, blocking=False)
        app_url = base_url + route_prefix.rstrip("/")
        wait_until_healthy(app_url)
        return app_url

    try:
        yield deploy
    finally:
        serve.shutdown()
        ray.shutdown()
