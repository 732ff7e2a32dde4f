"""Warm start: before /health turns 200 the ingress has every model prefill each configured database's prompt
prefix, so the first question only evaluates its own tokens. Real 0.5B model, the bundled Chinook database."""

from __future__ import annotations

import requests
from ray import serve

from deployments.builder import build_app
from tests.conftest import EMBEDDED_DEFAULT

APP = "warm"


def test_the_first_question_finds_its_schema_already_prefilled(ray_serve, embedded_model_path, tmp_path):
    args = {
        "databases": {
            "chinook": {"url": "builtin:chinook"},
            # Unreadable: its warm-up is skipped and logged, and readiness does not wait for it.
            "broken": {"url": f"sqlite:///{tmp_path / 'missing' / 'nothing.sqlite'}"},
        },
        "models": [{
            "name": EMBEDDED_DEFAULT, "source": str(embedded_model_path), "engine": {"n_ctx": 4096, "n_threads": 1},
            "generation": {"max_tokens": 128}, "ray_actor_options": {"num_cpus": 1},
        }],
    }
    base_url = ray_serve(build_app(args), name=APP)  # returns once /health is 200

    warmed = serve.get_deployment_handle(EMBEDDED_DEFAULT, app_name=APP).stats.remote().result()["warmed"]
    assert set(warmed) == {"chinook"}, warmed
    body = {"database": "chinook", "question": "How many artists are there?", "execute": True}
    first = requests.post(f"{base_url}/v1/sql/generate", json=body, timeout=300).json()
    assert first["success"] and first["rows"] == [[275]], first
    # The warm-up evaluated the whole schema prompt; the first question re-evaluates only what follows it.
    assert first["timings"]["generate_ms"] < 0.6 * warmed["chinook"], (first["timings"], warmed)
