"""The shipped training recipes stay valid: every config in training/configs loads strictly, and the RayJob
manifests validate against KubeRay's own CRD schema (../shared/kuberay-crds), run a shipped config on an image
built with the training code, and write adapters where the serving pods mount them."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import yaml

from training.config import load_training_config

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "training" / "configs").glob("*.yaml"))
RAYJOBS = sorted([REPO / "k8s" / "base" / "rayjob-lora-qwen0.5b-cpu.yaml", *(REPO / "k8s" / "training").glob("*.yaml")])
# The training images: a tag of a RayJob's image -> (Dockerfile, the stage that builds it; None: the last).
TRAINING_IMAGES = {"cpu-train": ("cpu.Dockerfile", "cpu-train"), "gpu-train": ("gpu-train.Dockerfile", None)}
ADAPTERS_MOUNT = "/app/adapters"  # where k8s/base/rayservice.yaml mounts text2sql-adapters, the app's watch dir
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
    job_config = load_training_config(config)
    workers = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert workers["replicas"] >= job_config.scaling.num_workers
    if job_config.scaling.use_gpu:
        gpus = workers["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
        assert int(gpus) >= job_config.scaling.resources_per_worker.get("GPU", 0)


def containers(manifest: dict) -> list[dict]:
    """The Ray containers of a RayJob's own cluster: its head and every worker group."""
    spec = manifest["spec"]["rayClusterSpec"]
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    return [c for group in groups for c in group["template"]["spec"]["containers"]]


def adapter_path_problems(manifest: dict) -> list[str]:
    """The adapter the driver writes (the head's workingDir + the recipe's output_dir) is the path --register sends
    the app, and the app's replicas open it: it must lie on text2sql-adapters mounted where the serving pods mount it.
    """
    words = shlex.split(manifest["spec"]["entrypoint"])
    config = load_training_config(REPO / words[words.index("--config") + 1])
    head_spec = manifest["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    head = head_spec["containers"][0]
    output = PurePosixPath(head["workingDir"]) / config.output_dir / config.name
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in head_spec["volumes"]}
    mounts = [m["mountPath"] for m in head.get("volumeMounts", []) if claims.get(m["name"]) == "text2sql-adapters"]
    problems = [f"text2sql-adapters is mounted on the head at {m}, not {ADAPTERS_MOUNT}" for m in mounts if m != ADAPTERS_MOUNT]
    if not output.is_relative_to(ADAPTERS_MOUNT) or ADAPTERS_MOUNT not in mounts:
        problems.append(f"the adapter {output} is not on text2sql-adapters at {ADAPTERS_MOUNT}, where the app reads it")
    return problems


@pytest.mark.parametrize("path", RAYJOBS, ids=lambda p: p.name)
def test_rayjobs_write_adapters_where_the_serving_pods_mount_them(path):
    manifest = yaml.safe_load(path.read_text())
    assert adapter_path_problems(manifest) == []
    # What issue 17 found: the GPU job's head mounted the volume on /mnt/adapters and its recipe wrote there.
    broken = copy.deepcopy(manifest)
    head = broken["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    (mount,) = [m for m in head["volumeMounts"] if m["name"] == "adapters"]
    mount["mountPath"] = "/mnt/adapters"
    assert adapter_path_problems(broken)
    head["workingDir"] = "/srv"
    mount["mountPath"] = ADAPTERS_MOUNT
    assert adapter_path_problems(broken)


def stage(dockerfile: str, name: str | None) -> str:
    """The text of one build stage (`FROM ... AS name` up to the next FROM); None: the whole file."""
    if name is None:
        return dockerfile
    match = re.search(rf"(?ms)^FROM \S+ AS {re.escape(name)}\n.*?(?=^FROM |\Z)", dockerfile)
    assert match, name
    return match.group(0)


@pytest.mark.parametrize("path", RAYJOBS, ids=lambda p: p.name)
def test_rayjobs_run_an_image_with_the_training_code(path):
    tags = {c["image"].rsplit(":", 1)[1] for c in containers(yaml.safe_load(path.read_text()))}
    assert len(tags) == 1 and tags <= set(TRAINING_IMAGES), tags
    dockerfile, target = TRAINING_IMAGES[tags.pop()]
    text = stage((REPO / "cluster" / "images" / dockerfile).read_text(), target)
    assert re.search(r"^COPY (?:--\S+ )*training \./training$", text, re.MULTILINE), dockerfile


@pytest.mark.parametrize("image", sorted(TRAINING_IMAGES))
def test_the_training_images_copy_what_exists_and_install_a_real_extra(image):
    dockerfile, target = TRAINING_IMAGES[image]
    text = stage((REPO / "cluster" / "images" / dockerfile).read_text(), target)
    sources = [words.split()[-2] for words in re.findall(r"^COPY (?:--\S+ )*(.+)$", text, re.MULTILINE)]
    assert sources and all((REPO / source).exists() for source in sources), sources
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed = re.findall(r'pip install --no-cache-dir "\.\[([^\]]+)\]"', text)[-1].split(",")
    assert set(installed) <= set(extras) and "training" in installed
