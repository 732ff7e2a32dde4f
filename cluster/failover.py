"""Kill a model replica's process while a client asks at a steady rate, and measure what it cost: how many requests
failed and how long until answers came back. The multi-node test asserts on it; `bench/bench_failover.py` reports it."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

import requests


@dataclass(frozen=True)
class Failover:
    requests: int  # sent from 5 s before the kill until 5 s after recovery
    failed_after_kill_s: list[float]  # for each failed request, when it was sent relative to the kill
    recovered_s: float  # from the kill until the first request sent after it was answered

    @property
    def failed(self) -> int:
        return len(self.failed_after_kill_s)


def kill_replica_under_load(
    base_url: str, model: str, pid: int, *, interval_s: float = 0.5, before_s: float = 5, after_s: float = 5,
    limit_s: float = 240,
) -> Failover:
    """One client, one request at a time every `interval_s`; SIGKILL `pid` `before_s` into it. Raises TimeoutError
    when nothing is answered within `limit_s` of the kill."""
    results: list[tuple[float, int, float]] = []  # (sent, status or 0 for no answer, answered)
    stop = threading.Event()

    def steady_client() -> None:
        body = {"model": model, "prompt": "SELECT", "max_tokens": 2, "temperature": 0}
        while not stop.is_set():
            sent = time.monotonic()
            try:
                code = requests.post(f"{base_url}/v1/completions", json=body, timeout=120).status_code
            except requests.RequestException:
                code = 0
            results.append((sent, code, time.monotonic()))
            time.sleep(max(0.0, interval_s - (time.monotonic() - sent)))

    client = threading.Thread(target=steady_client, daemon=True)
    client.start()
    try:
        time.sleep(before_s)
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        while not any(sent > killed_at and code == 200 for sent, code, _ in list(results)):
            if time.monotonic() - killed_at > limit_s:
                raise TimeoutError(f"no request was answered within {limit_s} s of the kill")
            time.sleep(0.2)
        recovered_s = min(done for sent, code, done in results if sent > killed_at and code == 200) - killed_at
        time.sleep(after_s)
    finally:
        stop.set()
        client.join(timeout=150)
    failed = [round(sent - killed_at, 2) for sent, code, _ in results if code != 200]
    return Failover(requests=len(results), failed_after_kill_s=failed, recovered_s=recovered_s)
