"""At the end of a job, `evaluation.enabled` runs the held-out split through the served pipeline in process, on
the base model and on the adapter, and records both in the adapter's metadata (tiny model: the numbers are not
the point, the accounting is)."""

from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("trl")
pytest.importorskip("ray.train")

from tests.training.conftest import build_shop  # noqa: E402
from tests.training.test_train_job import PAIRS  # noqa: E402
from tests.training.tiny_model import build_tiny_model  # noqa: E402
from training.evaluate import OUTCOMES  # noqa: E402
from training.train import main  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="text2sql-evaluation-tests")
    yield
    ray.shutdown()


def test_base_and_adapter_are_evaluated_on_the_held_out_split(ray_cluster, tmp_path):
    database = build_shop(tmp_path / "shop.db")
    (tmp_path / "train.jsonl").write_text(
        "".join(json.dumps({"question": q, "database": "shop", "sql": sql}) + "\n" for q, sql in PAIRS)
    )
    build_tiny_model(tmp_path / "tiny", [q + " " + sql for q, sql in PAIRS] * 4)
    config = {
        "name": "evaluated", "base_model": str(tmp_path / "tiny"),
        "data": {"train": str(tmp_path / "train.jsonl"), "eval_fraction": 0.25,
                 "databases": {"shop": {"url": f"sqlite:///{database}"}}},
        "lora": {"r": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        "optim": {"max_steps": 4, "per_device_batch_size": 2, "gradient_accumulation_steps": 1, "max_length": 1024},
        "scaling": {"num_workers": 1, "resources_per_worker": {"CPU": 1}},
        "storage_path": str(tmp_path / "runs"), "output_dir": str(tmp_path / "adapters"),
        "log_every_steps": 2, "checkpoint_every_steps": 4,
        "evaluation": {"enabled": True, "max_tokens": 12},
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["--config", str(path)]) == 0
    metadata = json.loads((tmp_path / "adapters" / "evaluated" / "text2sql-adapter.json").read_text())
    assert metadata["metrics"]["held_out"] == 2 and metadata["metrics"]["examples"] == 6
    evaluation = metadata["held_out_evaluation"]
    assert set(evaluation) == {"base", "adapter"}
    for summary in evaluation.values():
        assert summary["questions"] == 2 and sum(summary["outcomes"].values()) == 2
        assert set(summary["outcomes"]) == set(OUTCOMES) and summary["rule"] == "spider"
