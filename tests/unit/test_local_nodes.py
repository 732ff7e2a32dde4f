"""A `ray start` that fails must not leave what it started behind: a half-started node (its GCS, often) would
hold ports and memory for the rest of the session. A stand-in `ray` starts a daemon in its session, as the real one
starts its GCS, and then fails; the real failure (an AF_UNIX path too long for the dashboard's socket) takes 80 s."""

from __future__ import annotations

import os
import stat

import pytest

from cluster import local_nodes

FAILING_RAY = """#!/bin/sh
sleep 300 >/dev/null 2>&1 &
echo $! > "{pid_file}"
echo "Module MetricsHead failed to start."
exit 1
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat_file:  # a zombie is dead, only not yet reaped
        return stat_file.read().split()[2] != "Z"


def stand_in_ray(tmp_path, monkeypatch, script: str) -> None:
    """`script` as the `ray` that cluster.local_nodes runs."""
    ray = tmp_path / "ray"
    ray.write_text(script)
    ray.chmod(ray.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(local_nodes, "BIN", tmp_path)


def test_a_failed_ray_start_stops_the_daemons_it_began(tmp_path, monkeypatch):
    pid_file = tmp_path / "daemon.pid"
    stand_in_ray(tmp_path, monkeypatch, FAILING_RAY.format(pid_file=pid_file))

    with pytest.raises(RuntimeError, match="ray start failed: Module MetricsHead failed to start"):
        local_nodes._ray_start(["--head"], dict(os.environ))
    assert not alive(int(pid_file.read_text())), "the daemon the failed `ray start` began is still running"


RECORDING_RAY = """#!/bin/sh
echo "$@" > "{arguments_file}"
"""


def test_a_head_gets_a_distinct_port_for_every_component(tmp_path, monkeypatch):
    """CI once started a head whose dashboard and agent were handed the same port, and Ray refused to start."""
    arguments_file = tmp_path / "arguments"
    stand_in_ray(tmp_path, monkeypatch, RECORDING_RAY.format(arguments_file=arguments_file))

    local_nodes.start_head(tmp_path / "ray-temp")
    ports = [
        argument.split("=", 1)[1] for argument in arguments_file.read_text().split()
        if argument.split("=", 1)[0] in {"--port", "--dashboard-port", *local_nodes.AGENT_PORT_FLAGS}
    ]
    assert len(ports) == 2 + len(local_nodes.AGENT_PORT_FLAGS)
    assert len(set(ports)) == len(ports), f"a port was handed to two components: {ports}"


def test_free_ports_are_distinct():
    ports = local_nodes.free_ports(200)
    assert len(set(ports)) == 200
