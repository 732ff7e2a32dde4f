"""The app's health, kept current in the background so that `/health` answers at once, however busy the replicas.

Asking Serve's controller on every probe took over 5 s on a busy 2-core machine, long enough for a Kubernetes
probe to flap. Instead one thread reads `serve.status()` every `interval_s` and keeps what it saw; a probe reads
that. A model is ready while at least one of its replicas runs, whatever the deployment is doing besides
(UPSCALING, DOWNSCALING, UPDATING after the first replica); a model whose autoscaling allows zero replicas is
ready at zero too (its first request starts one). What the monitor saw is reported stale, and the app unready,
when no reading has succeeded for `stale_after_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Serve's deployment statuses that mean it cannot serve, whatever its replicas do.
FAILED_STATUSES = frozenset({"UNHEALTHY", "DEPLOY_FAILED"})
RUNNING = "RUNNING"


@dataclass(frozen=True)
class ModelHealth:
    status: str  # Serve's deployment status, or MISSING
    running_replicas: int
    scales_to_zero: bool

    @property
    def ready(self) -> bool:
        if self.status in FAILED_STATUSES or self.status == "MISSING":
            return False
        return self.running_replicas > 0 or self.scales_to_zero

    @property
    def problem(self) -> str | None:
        if self.ready:
            return None
        if self.status in FAILED_STATUSES or self.status == "MISSING":
            return self.status.lower()
        return f"no running replica ({self.status.lower()})"


@dataclass(frozen=True)
class HealthReport:
    ready: bool
    body: dict[str, Any]
    reason: str | None


def read_serve_statuses(serve: Any, app_name: str, model_names: list[str]) -> dict[str, tuple[str, int]]:
    """Each model deployment's Serve status and running replicas, from Serve's controller."""
    application = serve.status().applications.get(app_name)
    deployments = application.deployments if application else {}
    found = {}
    for name in model_names:
        deployment = deployments.get(name)
        if deployment is None:
            found[name] = ("MISSING", 0)
            continue
        states = {str(getattr(state, "value", state)): count for state, count in (deployment.replica_states or {}).items()}
        found[name] = (str(getattr(deployment.status, "value", deployment.status)), states.get(RUNNING, 0))
    return found


class HealthMonitor:
    """Reads the model deployments' state every `interval_s` in a daemon thread; `report()` never waits."""

    def __init__(
        self,
        read_statuses: Callable[[], Mapping[str, tuple[str, int]]],
        *,
        scales_to_zero: Mapping[str, bool],
        interval_s: float = 2.0,
        stale_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read_statuses
        self._scales_to_zero = dict(scales_to_zero)
        self._interval_s = interval_s
        self._stale_after_s = stale_after_s
        self._clock = clock
        self._models: dict[str, ModelHealth] = {}
        self._checked_at: float | None = None
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._run, name="health-monitor", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(self._interval_s)

    def check(self) -> None:
        """One reading; a failed one keeps the last state and records why."""
        try:
            statuses = self._read()
        except Exception as e:  # the controller may be busy or restarting: try again next round
            with self._lock:
                self._last_error = f"{type(e).__name__}: {e}"
            logger.warning("health: reading Serve's status failed: %s", self._last_error)
            return
        models = {
            name: ModelHealth(status, running, self._scales_to_zero.get(name, False))
            for name, (status, running) in statuses.items()
        }
        with self._lock:
            self._models, self._checked_at, self._last_error = models, self._clock(), None

    def may_scale_to_zero(self, model: str) -> bool:
        """Configured with `min_replicas: 0`, whatever it runs now."""
        return self._scales_to_zero.get(model, False)

    def scaled_to_zero(self, model: str) -> bool:
        """Whether the last reading saw `model` at zero replicas, as its autoscaling allows."""
        with self._lock:
            health = self._models.get(model)
        return health is not None and health.scales_to_zero and health.running_replicas == 0

    def report(self, *, warming: bool = False) -> HealthReport:
        with self._lock:
            models, checked_at, last_error = dict(self._models), self._checked_at, self._last_error
        age = None if checked_at is None else self._clock() - checked_at
        body: dict[str, Any] = {
            "models": {name: health.status for name, health in models.items()},
            "running_replicas": {name: health.running_replicas for name, health in models.items()},
            "checked_s_ago": None if age is None else round(age, 2),
        }
        if age is None:
            reason = "starting: model deployments not read yet" + (f" ({last_error})" if last_error else "")
        elif age > self._stale_after_s:
            reason = f"state unknown: the last reading is {age:.0f} s old ({last_error or 'no reading since'})"
        else:
            problems = {name: health.problem for name, health in models.items() if not health.ready}
            reason = f"models not ready: {problems}" if problems else None
        if reason is None and warming:
            reason = "warming up: prefilling the databases' schemas"
        scaled_to_zero = [n for n, h in models.items() if h.running_replicas == 0 and h.ready]
        if scaled_to_zero:
            body["scaled_to_zero"] = scaled_to_zero
        body["status"] = "ok" if reason is None else "warming up" if reason.startswith("warming") else "unavailable"
        return HealthReport(ready=reason is None, body=body, reason=reason)
