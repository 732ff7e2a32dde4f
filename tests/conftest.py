"""Shared test settings and fixtures.

Ray runs without token auth locally, and never on Redis's port 6379. `ray_serve` (a real Serve
instance per test module) and `embedded_model_path` (the real 0.5B GGUF) are used by `tests/serve/`
and `tests/browser/`.
"""

from __future__ import annotations

import os
import socket
import sys
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


def python_stacks(pid: int) -> str:
    """Every thread's Python stack of a live process (py-spy, which ray[serve] installs), or why there are none."""
    import shutil
    import subprocess

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        return subprocess.run([py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(py-spy could not read it: {e})"


def stop_serve_run(process, log_path: Path, *, timeout_s: float = 90) -> None:
    """SIGINT a `serve run` process as Ctrl-C does; fail with the tail of its log unless it exits 0 in time."""
    import signal
    import subprocess

    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        # Whether the process blocks or ignores SIGINT (inherited from this one) tells a deaf process from a hung one.
        status = Path(f"/proc/{process.pid}/status")
        signals = [line for line in status.read_text().splitlines() if line.startswith("Sig")] if status.exists() else []
        pytest.fail(
            f"serve run still running {timeout_s}s after SIGINT ({'; '.join(signals)}):\n{log_path.read_text()[-6000:]}"
            f"\nwhere it waits:\n{python_stacks(process.pid)}"
        )
    assert code == 0, log_path.read_text()[-4000:]


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
