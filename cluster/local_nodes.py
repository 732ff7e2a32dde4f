"""A Ray cluster of several nodes on one machine, started as a user starts one (`ray start`), for the tests and the
failover benchmark. Each node runs in a session of its own, so its starter stops its own nodes by process group
(`ray stop` would stop every Ray on the machine: a benchmark's, a developer's). Every port is a free one: Redis
holds 6379 on these machines, and another Ray may hold Ray's defaults."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports. The sockets stay bound until all are chosen: ports picked one at a time can
    repeat, and Ray refuses to start when two of its components are given the same one."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


@dataclass
class RayNodes:
    address: str  # the head's GCS, for `ray start --address` and `ray.init(address=...)`
    dashboard: str  # the head's dashboard: the job server and Serve's REST API
    env: dict[str, str]
    process_groups: list[int]


def ray_env() -> dict[str, str]:
    return os.environ | {"RAY_AUTH_MODE": "disabled", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


AGENT_PORT_FLAGS = (
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--metrics-export-port",
    "--runtime-env-agent-port",
)


def _agent_ports(ports: list[int]) -> list[str]:
    return [f"{flag}={port}" for flag, port in zip(AGENT_PORT_FLAGS, ports, strict=True)]


def _ray_start(arguments: list[str], env: dict[str, str], agent_ports: list[int] | None = None) -> int:
    agent_ports = agent_ports or free_ports(len(AGENT_PORT_FLAGS))
    starter = subprocess.Popen(
        [str(BIN / "ray"), "start", *arguments, "--disable-usage-stats", *_agent_ports(agent_ports)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        output, _ = starter.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        stop_process_group(starter.pid)
        raise RuntimeError("ray start did not finish within 180 s") from None
    if starter.returncode != 0:
        # A half-started node (its GCS, often) lives on in the session otherwise, holding ports and memory.
        stop_process_group(starter.pid)
        raise RuntimeError(f"ray start failed: {output.decode()[-2000:]}")
    return starter.pid


def start_head(temp_dir: Path, *, num_cpus: int = 2) -> RayNodes:
    env = ray_env()
    gcs_port, dashboard_port, *agent_ports = free_ports(2 + len(AGENT_PORT_FLAGS))
    pgid = _ray_start(
        [
            "--head", f"--port={gcs_port}", f"--dashboard-port={dashboard_port}", "--dashboard-host=127.0.0.1",
            "--include-dashboard=true", f"--num-cpus={num_cpus}", f"--temp-dir={temp_dir}",
        ],
        env,
        agent_ports,
    )
    return RayNodes(f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dashboard_port}", env, [pgid])


def add_worker(nodes: RayNodes, *, num_cpus: int, resources: dict[str, float] | None = None) -> None:
    arguments = [f"--address={nodes.address}", f"--num-cpus={num_cpus}"]
    if resources:
        arguments.append(f"--resources={json.dumps(resources)}")
    nodes.process_groups.append(_ray_start(arguments, nodes.env))


def stop_nodes(nodes: RayNodes) -> None:
    for pgid in reversed(nodes.process_groups):
        stop_process_group(pgid)


def stop_process_group(pgid: int, *, grace_s: float = 15) -> None:
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def serve_cli(nodes: RayNodes, *arguments: str) -> str:
    """`serve <command> -a <dashboard>`; the head's agent takes a moment to come up after `ray start`."""
    deadline = time.monotonic() + 120
    while True:
        done = subprocess.run(
            [str(BIN / "serve"), arguments[0], "-a", nodes.dashboard, *arguments[1:]],
            env=nodes.env, capture_output=True, text=True, timeout=300, cwd=os.getcwd(),
        )
        if done.returncode == 0:
            return done.stdout
        if time.monotonic() > deadline:
            raise RuntimeError(f"serve {arguments[0]} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        time.sleep(3)


def replica_actor(nodes: RayNodes, deployment: str) -> tuple[int, str]:
    """(pid, node id) of `deployment`'s one live replica, from Ray's state API on the head."""
    from ray.util.state import list_actors

    alive = list_actors(address=nodes.dashboard, filters=[("state", "=", "ALIVE")], detail=True)
    actors = [a for a in alive if deployment in (a.name or "")]  # Serve names replica actors after the deployment
    if len(actors) != 1:
        raise RuntimeError(f"expected one replica of {deployment}, found {[a.name for a in actors]}")
    return actors[0].pid, actors[0].node_id
