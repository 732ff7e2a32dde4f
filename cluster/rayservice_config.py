"""The RayServices' `serveConfigV2`, generated from the repository's Serve configs.

    python -m cluster.rayservice_config            # rewrite the generated patches
    python -m cluster.rayservice_config --check    # exit 1, naming the file, when one has drifted

Each kustomize overlay serves one Serve config of this repository: `cpu` serves serve_config.yaml (what
`serve run` serves locally) and `gpu` serves configs/gpu-vllm.yaml. The config's `args` are validated as
`deployments.config.AppConfig`, then `for_kubernetes` applies every cluster-specific change in one place, and
the result is written as a strategic-merge patch, k8s/overlays/<overlay>/serve-config.yaml, holding only the
RayService's `spec.serveConfigV2` string. tests/unit/test_k8s_manifests.py regenerates it and fails on drift.

Imports pydantic and PyYAML only (deployments.config avoids Ray and FastAPI on purpose).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deployments.config import AppConfig

REPO = Path(__file__).resolve().parents[1]
RAYSERVICE_NAME = "text2sql"

# Where the pods put things (k8s/base/rayservice.yaml mounts and sets them; the tests check they agree).
ADAPTERS_DIR = "/app/adapters"  # the `text2sql-adapters` PVC; the CPU training recipe writes <cwd>/adapters
API_KEY_ENV = "T2S_API_KEY"
ADMIN_KEY_ENV = "T2S_ADMIN_KEY"  # the name training/register.py reads, so one Secret serves both
DATABASE_URL_ENV = "T2S_DB_{name}_URL"  # one key per database in the `text2sql-databases` Secret


@dataclass(frozen=True)
class Overlay:
    name: str
    source: str  # a Serve config file, relative to the repository root

    @property
    def patch_path(self) -> Path:
        return REPO / "k8s" / "overlays" / self.name / "serve-config.yaml"


OVERLAYS = (Overlay("cpu", "serve_config.yaml"), Overlay("gpu", "configs/gpu-vllm.yaml"))


def database_url_env(name: str) -> str:
    return DATABASE_URL_ENV.format(name=re.sub(r"[^A-Za-z0-9]", "_", name).upper())


def for_kubernetes(serve_config: dict[str, Any]) -> dict[str, Any]:
    """The cluster's version of a Serve config: the one place where it differs from the file.

    - proxy_location EveryNode: each node holding a replica serves port 8000, which the worker pods' readiness
      probe (GET /health) and KubeRay's serve Service need; HeadOnly would leave the workers unprobeable.
    - adapter_watch_dir: the adapters PVC, where training jobs write, so a finished adapter is served without a
      restart.
    - databases: a literal `url` becomes `url_env` (the URL then comes from the `text2sql-databases` Secret, so
      no password reaches a manifest); the bundled `builtin:` sample stays.
    - auth: API keys always come from the `text2sql-api-keys` Secret; with none configured, one user and one
      admin key are required, so a cluster never serves an open API. A literal `key` is refused.
    """
    config = copy.deepcopy(serve_config)
    config["proxy_location"] = "EveryNode"
    config["http_options"] = {**config.get("http_options", {}), "host": "0.0.0.0", "port": 8000}
    for application in config["applications"]:
        args = application["args"]
        args["adapter_watch_dir"] = ADAPTERS_DIR
        for name, database in args.get("databases", {}).items():
            url = database.get("url")
            if url is not None and not url.startswith("builtin:"):
                del database["url"]
                database["url_env"] = database_url_env(name)
        auth = args.setdefault("auth", {})
        literal = [k["name"] for k in [*auth.get("api_keys", []), *auth.get("admin_keys", [])] if "key" in k]
        if literal:
            raise ValueError(f"API keys {literal} are written in the config; give them as key_env on a cluster")
        if not auth.get("api_keys"):
            auth["api_keys"] = [{"name": "default", "key_env": API_KEY_ENV}]
        if not auth.get("admin_keys"):
            auth["admin_keys"] = [{"name": "admin", "key_env": ADMIN_KEY_ENV}]
        AppConfig.model_validate(args)  # what the cluster runs must still be a valid app
    return config


def load_serve_config(path: Path) -> dict[str, Any]:
    """A Serve config file whose every application's args are a valid AppConfig (raises otherwise)."""
    config = yaml.safe_load(path.read_text())
    for application in config["applications"]:
        AppConfig.model_validate(application["args"])
    return config


class _Literal(str):
    pass


def _literal_block(dumper: yaml.SafeDumper, value: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


yaml.SafeDumper.add_representer(_Literal, _literal_block)


def serve_config_v2(overlay: Overlay) -> str:
    config = for_kubernetes(load_serve_config(REPO / overlay.source))
    return yaml.safe_dump(config, sort_keys=False, width=1000)


def render_patch(overlay: Overlay) -> str:
    patch = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": RAYSERVICE_NAME},
        "spec": {"serveConfigV2": _Literal(serve_config_v2(overlay))},
    }
    header = (
        f"# Generated by `python -m cluster.rayservice_config` from {overlay.source}; do not edit.\n"
        "# Cluster-specific changes: cluster/rayservice_config.py, for_kubernetes().\n"
    )
    return header + yaml.safe_dump(patch, sort_keys=False, width=1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a patch is out of date")
    args = parser.parse_args(argv)
    stale = []
    for overlay in OVERLAYS:
        text = render_patch(overlay)
        path = overlay.patch_path
        if path.is_file() and path.read_text() == text:
            continue
        stale.append(path.relative_to(REPO))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"{path}: {'out of date' if args.check else 'written'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
