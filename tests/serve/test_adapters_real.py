"""A real LoRA adapter, trained in the test run on the embedded 0.5B, registered at run time and served by name
through both CPU engines in one app: llama.cpp (converted to a GGUF LoRA when loaded) and Transformers (peft).
Its answers must show what it was trained to say, and the base models' must not."""

from __future__ import annotations

import requests

from deployments.builder import build_app
from tests.adapter_fixture import HELD_OUT_QUESTIONS, MARKER_SQL, SYSTEM, marker_adapter  # noqa: F401 (fixture)
from tests.conftest import EMBEDDED_DEFAULT

LLAMA, HF = EMBEDDED_DEFAULT, f"{EMBEDDED_DEFAULT}-hf"
MARKER = MARKER_SQL.rstrip(";")


def test_one_adapter_served_by_name_on_llama_cpp_and_transformers(ray_serve, embedded_model_path, marker_adapter):  # noqa: F811
    small = {"max_tokens_limit": 64, "generation": {"max_tokens": 24}, "ray_actor_options": {"num_cpus": 0.5}}
    args = {
        "models": [
            {"name": LLAMA, "source": str(embedded_model_path), "engine": {"n_ctx": 1024, "n_threads": 1}, **small},
            {"name": HF, "backend": "transformers", "source": str(embedded_model_path),
             "engine": {"torch_dtype": "fp32", "num_threads": 1, "max_batch_size": 1}, **small},
        ],
    }
    base_url = ray_serve(build_app(args), name="adapters-real")

    for base in (LLAMA, HF):
        name = f"marker-{'hf' if base == HF else 'gguf'}"
        created = requests.post(
            f"{base_url}/v1/adapters", json={"name": name, "base": base, "path": str(marker_adapter)}, timeout=600
        )
        assert created.status_code == 201, created.text

        for question in HELD_OUT_QUESTIONS:
            adapted = chat(base_url, name, question)
            plain = chat(base_url, base, question)
            assert MARKER in adapted, f"{name} on {base} did not answer as trained: {adapted!r}"
            assert MARKER not in plain, f"the base model {base} answered like the adapter: {plain!r}"

        # The SQL endpoint, by the adapter's other name: the trained answer goes through the whole pipeline.
        body = {"model": f"{base}:{name}", "question": HELD_OUT_QUESTIONS[0], "schema": "CREATE TABLE t (id INT);",
                "max_repairs": 0}
        sql = requests.post(f"{base_url}/v1/sql/generate", json=body, timeout=300)
        assert sql.status_code == 200, sql.text
        assert MARKER in sql.json()["sql"] and sql.json()["model"] == f"{base}:{name}"

    cards = {c["id"]: c for c in requests.get(f"{base_url}/v1/models", timeout=30).json()["data"]}
    assert cards[f"{LLAMA}:marker-gguf"]["parent"] == LLAMA and cards[f"{HF}:marker-hf"]["parent"] == HF


def chat(base_url: str, model: str, question: str) -> str:
    body = {
        "model": model, "temperature": 0, "max_tokens": 24,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
    }
    response = requests.post(f"{base_url}/v1/chat/completions", json=body, timeout=300)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]
