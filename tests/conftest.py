"""Shared test settings and fixtures.

Ray runs without token auth locally, and never on Redis's port 6379. `ray_serve` (a real Serve
instance per test module) and `embedded_model_path` (the real 0.5B GGUF) are used by `tests/serve/`
and `tests/browser/`.

`make test` runs two pytest-xdist workers, each with Ray clusters of its own: every in-process
`ray.init` passes `address="local"`, so that it never joins a cluster another worker (or a user) started.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cluster.local_nodes import free_port

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Hub clients must fail fast here: there is no network but the package registries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
EMBEDDED_DEFAULT = "qwen2.5-coder-0.5b"
# The modules that reach the live PostgreSQL and MariaDB servers run one after another, on one worker.
LIVE_DATABASES_SCOPE = "live-databases"
# Handed to the workers first, longest first (seconds in a two-worker run), so that the short ones fill in at the
# end; then the other modules that start Ray, load models or train; then the rest.
SLOWEST_MODULES = (
    "tests/training/test_train_and_serve.py",  # 229
    "tests/serve/test_cancellation.py",  # 216
    "tests/engines/test_adapters.py",  # 106
    "tests/serve/test_serve_run.py",  # 101
    "tests/serve/test_cpu_mixed.py",  # 75 alone
    "tests/serve/test_accuracy_switches.py",  # 93
    "tests/serve/test_autoscaling.py",  # 89
    "tests/training/test_ray_job_submit.py",  # 83
    "tests/training/test_train_job.py",  # 76
    "tests/serve/test_adapters_real.py",  # 69
    "tests/serve/test_transformers_serve.py",  # 67
    "tests/serve/test_multi_node.py",  # 56
)
HEAVY_TEST_DIRS = ("browser", "engines", "serve", "training")


def handout_order(nodeid: str) -> int:
    module = nodeid.split("::")[0]
    if module in SLOWEST_MODULES:
        return SLOWEST_MODULES.index(module)
    return len(SLOWEST_MODULES) + (0 if module.split("/")[1] in HEAVY_TEST_DIRS else 1)


@functools.cache
def reaches_live_databases(module: Path) -> bool:
    """Whether a test module, or the conftest beside it, uses tests/live_databases.py: the one way to reach them."""
    sources = (module, module.with_name("conftest.py"))
    return any(path.exists() and "tests.live_databases" in path.read_text() for path in sources)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the order the workers report is the order modules are handed out
        items.sort(key=lambda item: handout_order(item.nodeid))


if importlib.util.find_spec("xdist"):

    def pytest_xdist_make_scheduler(config: pytest.Config, log):
        """A module's tests stay together on one worker (a module starts its own Ray and models once), and the
        live-database modules form one unit. Not xdist's `loadgroup`: it renames the tests' node ids, which
        pytest 9 no longer lets a plugin do."""
        from xdist.scheduler import LoadScopeScheduling

        class ModuleScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                module = nodeid.split("::")[0]
                return LIVE_DATABASES_SCOPE if reaches_live_databases(config.rootpath / module) else module

        return ModuleScheduling(config, log)


def wait_until_healthy(base_url: str, *, timeout_s: float = 600, process=None) -> None:
    """The proxy answers 404 until the app is routed; ready means /health returns 200. Ten minutes: on a busy 2-core
    machine a model's warm-up prefill alone has taken over three."""
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
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        return subprocess.run([py_spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(py-spy could not read it: {e})"


@contextlib.contextmanager
def started_serve_run(config_path: Path, log_path: Path) -> Iterator[subprocess.Popen]:
    """`serve run <config>` as a user starts it from a terminal, its output in `log_path`; stopped with SIGINT, then
    killed, on the way out. SIGINT is set back to its default in the child: a test run started in the background
    (`cmd &` in a script, as CI may) ignores SIGINT, the child would inherit that, and Ctrl-C would never reach it.
    No RAY_ADDRESS: serve run starts its own local Ray on free ports, clear of Redis on 6379."""
    serve_bin = Path(sys.executable).with_name("serve")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_AUTH_MODE": "disabled"}
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(serve_bin), "run", str(config_path)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # serve run shuts its Ray down on SIGINT
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def stop_serve_run(process, log_path: Path, *, timeout_s: float = 90) -> None:
    """SIGINT a `serve run` process as Ctrl-C does; fail with the tail of its log unless it exits 0 in time."""
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


@pytest.fixture(scope="module")
def ray_temp_dir() -> Iterator[Path]:
    """A temp dir for a Ray that `ray start` runs. Short: Ray's sockets live under it, an AF_UNIX path stops at 107
    bytes, and pytest's own temp paths (longer under pytest-xdist) go over."""
    path = Path(tempfile.mkdtemp(prefix="ray-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


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

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, namespace="text2sql-tests")
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
