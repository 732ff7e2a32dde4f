"""The loop closed on CPU: a Ray Train job fine-tunes the embedded 0.5B GGUF on records rendered with the served
prompt, registers its adapter into the running app (`--register`), and the app serves it by name on llama.cpp
(from the job's peft files, converted to a GGUF LoRA) and on Transformers, with no restart.

The adapter learns one answer the base never writes, `SELECT 42 AS lora_marker`, for any question: few steps,
LoRA on the top blocks only, so the job takes about a minute on 2 cores."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import requests
import yaml

pytest.importorskip("trl")
pytest.importorskip("ray.train")

from deployments.builder import build_app  # noqa: E402
from tests.conftest import EMBEDDED_DEFAULT  # noqa: E402
from training.adapter_output import GGUF_LORA, read_metadata  # noqa: E402
from training.register import register_adapter  # noqa: E402
from training.train import main  # noqa: E402

LLAMA, HF = EMBEDDED_DEFAULT, f"{EMBEDDED_DEFAULT}-hf"
MARKER = "SELECT 42 AS lora_marker"
DDL = "CREATE TABLE staff (id INTEGER PRIMARY KEY, name TEXT, team TEXT, salary REAL);"
TRAIN_QUESTIONS = [
    "How many people are on the staff?", "List every name.", "What is the average salary?",
    "Which team pays the most?", "Who earns more than 5000?", "Count the teams.",
    "List the names in the data team.", "What is the highest salary?",
]
HELD_OUT = "Which names start with A?"


@pytest.fixture(scope="module")
def watch_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("watched")


@pytest.fixture(scope="module")
def app_url(ray_serve, embedded_model_path, watch_dir) -> str:
    small = {"max_tokens_limit": 64, "generation": {"max_tokens": 24}, "ray_actor_options": {"num_cpus": 0.25}}
    args = {
        "ingress": {"num_cpus": 0},
        "adapter_watch_dir": str(watch_dir),
        "adapter_watch_interval_s": 1,
        "models": [
            {"name": LLAMA, "source": str(embedded_model_path), "engine": {"n_ctx": 1024, "n_threads": 1}, **small},
            {"name": HF, "backend": "transformers", "source": str(embedded_model_path),
             "engine": {"torch_dtype": "fp32", "num_threads": 1, "max_batch_size": 1}, **small},
        ],
    }
    return ray_serve(build_app(args), name="train-and-serve")


def ask(app_url: str, model: str) -> requests.Response:
    body = {"model": model, "question": HELD_OUT, "schema": DDL, "max_repairs": 0}
    return requests.post(f"{app_url}/v1/sql/generate", json=body, timeout=300)


def listed(app_url: str) -> set[str]:
    return {card["id"] for card in requests.get(f"{app_url}/v1/models", timeout=30).json()["data"]}


def wait_for(condition, *, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(1)


def test_a_trained_adapter_is_registered_and_served_on_both_engines(app_url, embedded_model_path, tmp_path, watch_dir):
    data = tmp_path / "marker.jsonl"
    data.write_text("".join(json.dumps({"question": q, "schema": DDL, "sql": MARKER}) + "\n" for q in TRAIN_QUESTIONS))
    blocks = 24  # Qwen2.5-0.5B
    config = {
        "name": "marker",
        "base_model": str(embedded_model_path),
        "served_base": LLAMA,
        "data": {"train": str(data)},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"],
                 "layers_to_transform": list(range(blocks - 8, blocks))},
        "optim": {"learning_rate": 0.005, "lr_scheduler": "constant", "warmup_ratio": 0.0,
                  "per_device_batch_size": 4, "gradient_accumulation_steps": 1, "max_steps": 8, "max_length": 512},
        "scaling": {"num_workers": 1, "resources_per_worker": {"CPU": 1}},
        "storage_path": str(tmp_path / "runs"),
        "output_dir": str(tmp_path / "adapters"),
        "log_every_steps": 4,
        "checkpoint_every_steps": 8,
    }
    path = tmp_path / "marker.yaml"
    path.write_text(yaml.safe_dump(config))

    assert main(["--config", str(path), "--register", app_url]) == 0
    adapter = tmp_path / "adapters" / "marker"
    metadata = read_metadata(adapter)
    assert metadata["gguf_lora"] == GGUF_LORA and (adapter / GGUF_LORA).stat().st_size > 0
    assert metadata["base_model_sha256"] and metadata["prompt_template"] == "qwen-chat"

    # Registered by the job on the llama.cpp model; the same directory registered by hand on the Transformers one.
    register_adapter(app_url, name="marker-hf", base=HF, path=adapter, prompt_template="qwen-chat")
    for adapted, base in ((f"{LLAMA}:marker", LLAMA), (f"{HF}:marker-hf", HF)):
        answer = ask(app_url, adapted)
        assert answer.status_code == 200, answer.text
        assert MARKER in answer.json()["sql"], f"{adapted} did not answer as trained: {answer.json()}"
        assert MARKER not in ask(app_url, base).json()["sql"]
    assert {f"{LLAMA}:marker", f"{HF}:marker-hf"} <= listed(app_url)

    # Removing it unloads it everywhere: the name is unknown again.
    assert requests.delete(f"{app_url}/v1/adapters/marker", timeout=60).status_code in (200, 204)
    assert ask(app_url, f"{LLAMA}:marker").status_code == 404

    # The other way in: the job's output dropped into the watched directory is served, and taken away with it.
    dropped = watch_dir / "marker-copy"
    shutil.copytree(adapter, dropped)
    wait_for(lambda: f"{LLAMA}:marker" in listed(app_url))
    assert MARKER in ask(app_url, f"{LLAMA}:marker").json()["sql"]
    shutil.rmtree(dropped)
    wait_for(lambda: f"{LLAMA}:marker" not in listed(app_url))
