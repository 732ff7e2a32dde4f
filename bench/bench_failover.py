"""Failure recovery on a real two-node Ray cluster on this machine: a head without CPUs and a worker with two, both
started with `ray start`, the 0.5B deployed with `serve deploy`. A client asks every 0.5 s, one request at a time;
the model replica's process is killed (SIGKILL) and Serve starts a new one. Repeated, one kill per round.

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_failover [--kills 3]

Reports per kill how many requests failed (and when they had been sent, relative to the kill) and how long from
the kill until the first request sent after it was answered. Writes bench/results/failover.json and the `failover`
section of BENCHMARKS.md. The same scenario is asserted on in tests/serve/test_multi_node.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from bench.report import publish
from bench.serve_app import wait_until_healthy
from cluster.failover import kill_replica_under_load
from cluster.local_nodes import add_worker, free_port, replica_actor, serve_cli, start_head, stop_nodes
from deployments.embedded_models import ensure_embedded_model

logger = logging.getLogger("bench_failover")
MODEL = "qwen2.5-coder-0.5b"


def serve_config(http_port: int) -> dict:
    model = {
        "name": MODEL, "source": str(ensure_embedded_model(MODEL)), "engine": {"n_ctx": 1024, "n_threads": 1},
        "generation": {"max_tokens": 8, "temperature": 0}, "ray_actor_options": {"num_cpus": 1},
    }  # fmt: skip
    return {
        "http_options": {"host": "127.0.0.1", "port": http_port},
        "applications": [{
            "name": "text2sql", "route_prefix": "/", "import_path": "deployments.builder:build_app",
            "args": {"models": [model]},
        }],
    }  # fmt: skip


def render(result: dict) -> str:
    lines = [
        "A head without CPUs and a worker with two, started with `ray start` on this machine; the 0.5B deployed with "
        "`serve deploy`; a client asking every 0.5 s, one request at a time, while the replica's process is killed "
        f"(SIGKILL), {len(result['kills'])} times. *Recovered* is from the kill until the first request sent after "
        "it was answered (Serve notices the death, starts a replica on the worker, and it loads the model).",
        "",
        "| kill | requests sent | failed | failed requests sent at (s after the kill) | recovered after |",
        "|---|---|---|---|---|",
    ]
    for number, kill in enumerate(result["kills"], start=1):
        sent_at = ", ".join(f"{t:+.1f}" for t in kill["failed_after_kill_s"]) or "-"
        lines.append(
            f"| {number} | {kill['requests']} | {len(kill['failed_after_kill_s'])} | {sent_at} | {kill['recovered_s']:.1f} s |"
        )
    summary = result["summary"]
    lines += ["", f"Median: {summary['failed']:.0f} failed per kill, answers again after {summary['recovered_s']:.1f} s."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    kills = []
    with tempfile.TemporaryDirectory(prefix="failover-") as temp:
        nodes = start_head(Path(temp) / "ray", num_cpus=0)
        try:
            add_worker(nodes, num_cpus=2)
            http_port = free_port()
            config_path = Path(temp) / "serve_config.yaml"
            config_path.write_text(yaml.safe_dump(serve_config(http_port)))
            serve_cli(nodes, "deploy", str(config_path))
            base_url = f"http://127.0.0.1:{http_port}"
            wait_until_healthy(base_url, timeout_s=600)
            ray.init(address=nodes.address, namespace="failover-bench", log_to_driver=False)
            for number in range(args.kills):
                pid, _ = replica_actor(nodes, MODEL)
                failover = kill_replica_under_load(base_url, MODEL, pid)
                logger.info("kill %d: %s", number + 1, failover)
                kills.append(dataclasses.asdict(failover))
                wait_until_healthy(base_url, timeout_s=600)
        finally:
            ray.shutdown()
            stop_nodes(nodes)
    result = {
        "kills": kills,
        "summary": {
            "failed": statistics.median(len(k["failed_after_kill_s"]) for k in kills),
            "recovered_s": statistics.median(k["recovered_s"] for k in kills),
        },
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    publish("failover", result, render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
