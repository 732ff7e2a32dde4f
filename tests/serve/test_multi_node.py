"""A real two-node Ray cluster on one machine, driven with the commands the README gives: `ray start --head` (no
CPUs, so replicas cannot land there) and `ray start --address=...` for a worker, `serve deploy` and `serve
status`. Then a model replica's process is killed while a client asks at a steady rate: Serve restarts it on the
worker, and only requests in flight at the kill may fail. Bounded: every wait has a limit."""

from __future__ import annotations

import pytest
import yaml

from cluster.failover import kill_replica_under_load
from cluster.local_nodes import add_worker, free_port, replica_actor, serve_cli, start_head, stop_nodes
from tests.conftest import EMBEDDED_DEFAULT, wait_until_healthy

MODEL = EMBEDDED_DEFAULT


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, ray_temp_dir, embedded_model_path):
    """(nodes, app url): head without CPUs, one worker with 2, the app deployed with `serve deploy`."""
    nodes = start_head(ray_temp_dir, num_cpus=0)
    try:
        add_worker(nodes, num_cpus=2)
        http_port = free_port()
        config = {
            "http_options": {"host": "127.0.0.1", "port": http_port},
            "applications": [{
                "name": "text2sql", "route_prefix": "/", "import_path": "deployments.builder:build_app",
                "args": {"models": [{
                    "name": MODEL, "source": str(embedded_model_path), "engine": {"n_ctx": 1024, "n_threads": 1},
                    "generation": {"max_tokens": 8, "temperature": 0}, "ray_actor_options": {"num_cpus": 1},
                }]},
            }],
        }
        path = tmp_path_factory.mktemp("config") / "serve_config.yaml"
        path.write_text(yaml.safe_dump(config))
        serve_cli(nodes, "deploy", str(path))
        base_url = f"http://127.0.0.1:{http_port}"
        wait_until_healthy(base_url)
        yield nodes, base_url
    finally:
        import ray

        ray.shutdown()
        stop_nodes(nodes)


def test_serve_status_then_a_killed_replica_is_replaced_with_only_in_flight_requests_lost(cluster):
    import ray

    nodes, base_url = cluster
    status = yaml.safe_load(serve_cli(nodes, "status"))
    deployments = status["applications"]["text2sql"]["deployments"]
    assert deployments[MODEL]["status"] == "HEALTHY" and deployments[MODEL]["replica_states"] == {"RUNNING": 1}

    ray.init(address=nodes.address, namespace="multi-node-test", ignore_reinit_error=True)
    pid, node_id = replica_actor(nodes, MODEL)
    head_node = next(n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) == 0)
    assert node_id != head_node["NodeID"], "the replica must run on the worker: the head has no CPUs"

    failover = kill_replica_under_load(base_url, MODEL, pid, limit_s=240)
    print(f"\nreplica killed: {failover.failed} of {failover.requests} requests failed, "
          f"answered again after {failover.recovered_s:.1f} s")
    # One request at a time: the one in flight at the kill fails, and those the router sent before it heard of
    # the death; every later one waits for the new replica instead of failing.
    assert failover.failed <= 3 and all(after < 10 for after in failover.failed_after_kill_s), failover
    assert failover.requests > failover.failed
    new_pid, new_node = replica_actor(nodes, MODEL)
    assert new_pid != pid and new_node != head_node["NodeID"]
