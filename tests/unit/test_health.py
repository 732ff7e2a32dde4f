"""The background health monitor: what /health reports from the model deployments' last known state."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from deployments.health import HealthMonitor, read_serve_statuses


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def monitor(statuses, *, scales_to_zero=None, clock=None, stale_after_s=60.0) -> HealthMonitor:
    reader = statuses if callable(statuses) else (lambda: statuses)
    return HealthMonitor(reader, scales_to_zero=scales_to_zero or {}, stale_after_s=stale_after_s, clock=clock or Clock())


def test_before_the_first_reading_the_app_is_starting():
    report = monitor({"m": ("HEALTHY", 1)}).report()
    assert not report.ready and report.reason.startswith("starting")


def test_every_model_with_a_running_replica_is_ready():
    health = monitor({"a": ("HEALTHY", 1), "b": ("HEALTHY", 2)})
    health.check()
    report = health.report()
    assert report.ready and report.reason is None
    assert report.body["status"] == "ok" and report.body["models"] == {"a": "HEALTHY", "b": "HEALTHY"}
    assert report.body["running_replicas"] == {"a": 1, "b": 2}


@pytest.mark.parametrize("status", ["UPSCALING", "DOWNSCALING", "UPDATING"])
def test_autoscaling_or_updating_with_a_running_replica_stays_ready(status):
    """Serve says UPSCALING under a burst; a probe must not call that unavailable."""
    health = monitor({"a": (status, 1)})
    health.check()
    assert health.report().ready


def test_a_model_without_a_running_replica_is_named_with_the_reason():
    health = monitor({"a": ("HEALTHY", 1), "b": ("UPDATING", 0)})
    health.check()
    report = health.report()
    assert not report.ready and report.body["status"] == "unavailable"
    assert "'b'" in report.reason and "no running replica" in report.reason and "'a'" not in report.reason


@pytest.mark.parametrize("status", ["UNHEALTHY", "DEPLOY_FAILED", "MISSING"])
def test_a_failed_deployment_is_unready_even_with_replicas(status):
    health = monitor({"a": (status, 1)})
    health.check()
    assert not health.report().ready and status.lower() in health.report().reason


def test_a_model_scaled_to_zero_is_not_an_error():
    health = monitor({"a": ("HEALTHY", 1), "z": ("HEALTHY", 0)}, scales_to_zero={"z": True})
    health.check()
    report = health.report()
    assert report.ready and report.body["scaled_to_zero"] == ["z"]
    # The same state without min_replicas 0 is an outage.
    strict = monitor({"a": ("HEALTHY", 1), "z": ("HEALTHY", 0)})
    strict.check()
    assert not strict.report().ready


def test_whether_a_model_may_scale_to_zero_is_its_config_not_its_state():
    """The ingress's warm-up skips such a model even while it runs: waking one only to warm it would be waste."""
    health = monitor({"a": ("HEALTHY", 1), "z": ("HEALTHY", 1)}, scales_to_zero={"z": True})
    health.check()
    assert health.may_scale_to_zero("z") and not health.scaled_to_zero("z")
    assert not health.may_scale_to_zero("a") and not health.may_scale_to_zero("unknown")


def test_warming_up_keeps_it_unready_after_the_models_are():
    health = monitor({"a": ("HEALTHY", 1)})
    health.check()
    report = health.report(warming=True)
    assert not report.ready and report.body["status"] == "warming up" and "prefilling" in report.reason


def test_a_failed_reading_keeps_the_last_state_until_it_is_stale():
    clock = Clock()
    answers = iter([{"a": ("HEALTHY", 1)}])

    def read():
        try:
            return next(answers)
        except StopIteration:
            raise TimeoutError("controller busy") from None

    health = monitor(read, clock=clock, stale_after_s=30)
    health.check()
    clock.now += 20
    health.check()  # fails: the last reading stands
    assert health.report().ready and health.report().body["checked_s_ago"] == 20
    clock.now += 15
    report = health.report()
    assert not report.ready and "35 s old" in report.reason and "controller busy" in report.reason


def test_report_never_waits_on_a_slow_reading():
    """The whole point: a reading stuck in Serve's controller does not hold up the probe."""
    release = threading.Event()

    def slow_read():
        release.wait(10)
        return {"a": ("HEALTHY", 1)}

    health = HealthMonitor(slow_read, scales_to_zero={}, interval_s=0.05)
    health.start()
    try:
        started = time.perf_counter()
        report = health.report()
        assert time.perf_counter() - started < 0.1 and not report.ready
        release.set()
        deadline = time.monotonic() + 5
        while not health.report().ready:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        release.set()
        health.stop()


def test_serve_status_is_read_per_model():
    from ray.serve._private.common import DeploymentStatus, DeploymentStatusTrigger, ReplicaState
    from ray.serve.schema import (
        ApplicationStatus,
        ApplicationStatusOverview,
        DeploymentStatusOverview,
        ServeStatus,
    )

    deployments = {
        "a": DeploymentStatusOverview(
            status=DeploymentStatus.UPSCALING, status_trigger=DeploymentStatusTrigger.AUTOSCALING, message="",
            replica_states={ReplicaState.RUNNING: 1, ReplicaState.STARTING: 1},
        ),
    }
    status = ServeStatus(applications={
        "app": ApplicationStatusOverview(status=ApplicationStatus.RUNNING, message="", last_deployed_time_s=0, deployments=deployments),
    })
    serve = SimpleNamespace(status=lambda: status)
    assert read_serve_statuses(serve, "app", ["a", "b"]) == {"a": ("UPSCALING", 1), "b": ("MISSING", 0)}
    assert read_serve_statuses(serve, "other", ["a"]) == {"a": ("MISSING", 0)}
