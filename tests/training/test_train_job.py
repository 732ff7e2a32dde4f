"""The training job end to end on a tiny model built here: Ray Train with two gloo workers runs trl's SFTTrainer
over records rendered with the served prompt; the loss falls, the adapter and its metadata are written, and a
resumed run continues from its checkpoint. Needs the `[training]` extra (skipped without it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("trl")
pytest.importorskip("ray.train")

from tests.training.conftest import build_shop  # noqa: E402
from tests.training.tiny_model import build_tiny_model  # noqa: E402
from training.train import main  # noqa: E402

DDL = (
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT);\n"
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total REAL);"
)
PAIRS = [
    ("How many customers are there?", "SELECT COUNT(*) FROM customers"),
    ("List every customer's name.", "SELECT name FROM customers"),
    ("What is the total of all orders?", "SELECT SUM(total) FROM orders"),
    ("Which customers live in the UK?", "SELECT name FROM customers WHERE country = 'UK'"),
    ("How many orders are there?", "SELECT COUNT(*) FROM orders"),
    ("What is the largest order total?", "SELECT MAX(total) FROM orders"),
    ("List the countries of the customers.", "SELECT DISTINCT country FROM customers"),
    ("Show the orders over 10.", "SELECT id FROM orders WHERE total > 10"),
]


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=True, namespace="text2sql-training-tests")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train")
    lines = [{"question": q, "schema": DDL, "sql": sql} for q, sql in PAIRS]
    (root / "train.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    corpus = [DDL, *(q + " " + sql for q, sql in PAIRS)] * 4
    build_tiny_model(root / "tiny-model", corpus)
    build_shop(root / "shop.db")
    return root


def write_config(workspace: Path, name: str, **changes) -> Path:
    config = {
        "name": name,
        "base_model": str(workspace / "tiny-model"),
        "data": {"train": str(workspace / "train.jsonl")},
        "lora": {
            "r": 8, "alpha": 16, "dropout": 0.0,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        },
        "optim": {
            "learning_rate": 0.05, "lr_scheduler": "constant", "warmup_ratio": 0.0, "per_device_batch_size": 2,
            "gradient_accumulation_steps": 1, "max_steps": 20, "max_length": 512,
        },
        "scaling": {"num_workers": 2, "resources_per_worker": {"CPU": 1}},
        "storage_path": str(workspace / "runs"),
        "output_dir": str(workspace / "adapters"),
        "log_every_steps": 5,
        "checkpoint_every_steps": 10,
    }
    for key, value in changes.items():
        config[key] = config[key] | value if isinstance(value, dict) and isinstance(config.get(key), dict) else value
    path = workspace / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_two_workers_train_resume_and_the_loss_falls(ray_cluster, workspace):
    """One run in two legs (CI time): 10 steps, then --resume to 20, on two gloo workers."""
    first = write_config(workspace, "tiny-sql", optim={"max_steps": 10})
    assert main(["--config", str(first)]) == 0
    # The same name again without --resume is refused rather than overwritten.
    assert main(["--config", str(first)]) == 2
    longer = write_config(workspace, "tiny-sql", optim={"max_steps": 20})
    assert main(["--config", str(longer), "--resume"]) == 0

    adapter = workspace / "adapters" / "tiny-sql"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    metadata = json.loads((adapter / "text2sql-adapter.json").read_text())
    metrics = metadata["metrics"]
    assert metrics["resumed_from_step"] == 10 and metrics["global_step"] == 20, metrics
    curve = metrics["loss_curve"]  # logged every 5 steps; the Trainer's restored state keeps the first leg's
    assert len(curve) == 4 and curve[-1] < curve[0] * 0.7, curve
    assert metrics["examples"] == len(PAIRS) and metrics["base_in_4bit"] is False
    assert metadata["prompt_template"] == "qwen-chat" and len(metadata["base_model_sha256"]) == 64
    assert metadata["gguf_lora"] is None  # an HF base: llama.cpp serves GGUF bases only
    peft_config = json.loads((adapter / "adapter_config.json").read_text())
    assert peft_config["base_model_name_or_path"] == str(workspace / "tiny-model") and peft_config["r"] == 8


def test_bad_data_stops_the_job_before_any_worker_with_the_line(workspace, caplog):
    bad = workspace / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "schema": DDL, "sql": "SELECT nam FROM customers"}) + "\n")
    config = write_config(workspace, "tiny-bad", data={"train": str(bad)})
    assert main(["--config", str(config)]) == 2
    assert f"{bad}:1:" in caplog.text and "nam" in caplog.text
    assert not (workspace / "runs" / "tiny-bad").exists()  # no run was started


def test_qlora_trains_a_4bit_base_on_the_cpu(ray_cluster, workspace, monkeypatch):
    """Also: paths relative to where the command runs (as in the shipped recipes) mean the same in the workers."""
    config = write_config(
        workspace, "tiny-qlora", load_in_4bit=True, scaling={"num_workers": 1}, optim={"max_steps": 12},
        data={"train": "train.jsonl"}, storage_path="runs", output_dir="adapters",
    )
    monkeypatch.chdir(workspace)
    assert main(["--config", config.name]) == 0
    metadata = json.loads((workspace / "adapters" / "tiny-qlora" / "text2sql-adapter.json").read_text())
    curve = metadata["metrics"]["loss_curve"]
    assert metadata["training_config"]["load_in_4bit"] is True and metadata["metrics"]["base_in_4bit"] is True
    assert curve[-1] < curve[0], curve
