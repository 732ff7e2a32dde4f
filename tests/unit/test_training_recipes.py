"""The shipped training recipes stay valid: every config in training/configs loads strictly, and the RayJob
manifest validates against KubeRay's own CRD schema (../shared/kuberay-crds) and runs a shipped config."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from training.config import load_training_config

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "training" / "configs").glob("*.yaml"))
RAYJOBS = sorted((REPO / "k8s" / "training").glob("*.yaml"))
CRDS = REPO.parent / "shared" / "kuberay-crds"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_training_config_loads(path):
    config = load_training_config(path)
    assert config.served_base and config.name


def crd_schema(kind_file: str) -> dict:
    if not (CRDS / kind_file).is_file():
        pytest.skip(f"KubeRay's CRDs are not at {CRDS}")
    crd = yaml.safe_load((CRDS / kind_file).read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("path", RAYJOBS, ids=lambda p: p.name)
def test_rayjob_manifests_validate_and_run_a_shipped_config(path):
    manifest = yaml.safe_load(path.read_text())
    schema = crd_schema("ray.io_rayjobs.yaml")
    jsonschema.validate(manifest, schema)
    broken = copy.deepcopy(manifest)
    broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    words = shlex.split(manifest["spec"]["entrypoint"])
    config = REPO / words[words.index("--config") + 1]
    assert words[:3] == ["python", "-m", "training.train"] and config in CONFIGS
    gpu_config = load_training_config(config)
    workers = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert workers["replicas"] >= gpu_config.scaling.num_workers
    gpus = workers["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    assert int(gpus) >= gpu_config.scaling.resources_per_worker.get("GPU", 0)


def test_the_training_image_copies_what_exists_and_installs_a_real_extra():
    dockerfile = (REPO / "cluster" / "images" / "gpu-train.Dockerfile").read_text()
    sources = [words.split()[-2] for words in re.findall(r"^COPY (?:--\S+ )*(.+)$", dockerfile, re.MULTILINE)]
    assert sources and all((REPO / source).exists() for source in sources), sources
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed = re.search(r'pip install --no-cache-dir "\.\[([^\]]+)\]"', dockerfile).group(1).split(",")
    assert set(installed) <= set(extras) and "training" in installed
