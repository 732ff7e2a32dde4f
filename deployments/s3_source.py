"""Model weights from S3 or an S3-compatible store (MinIO, Ceph, R2), copied once into the model cache.

`s3://bucket/path/model.gguf` fetches one object; `s3://bucket/path/model-dir` (no such object) fetches
every object under `path/model-dir/`, keeping the layout, for model directories. boto3 finds credentials
the usual way (environment, `AWS_PROFILE`, an instance or pod role) and `AWS_ENDPOINT_URL` points it at
a non-AWS store. A file already in the cache with the object's size is not fetched again; new files
land under their final name only when complete, and a lock keeps two replicas on one node from
downloading the same model twice.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from filelock import FileLock

from text2sql.messages import first_line

logger = logging.getLogger(__name__)


class S3FetchError(RuntimeError):
    """The objects cannot be listed or fetched; the message says what to do."""


def s3_cache_path(cache_dir: Path, bucket: str, key: str) -> Path:
    return cache_dir / "s3" / bucket / key.strip("/")


def fetch_from_s3(bucket: str, key: str, *, cache_dir: Path) -> Path:
    """A local copy of `s3://bucket/key`: the file for an object, the directory for a prefix."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as e:
        raise S3FetchError(f"s3://{bucket}/{key} needs the S3 client: pip install 'text2sql-serve[s3]'") from e

    target = s3_cache_path(cache_dir, bucket, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        client = boto3.client("s3")
        with FileLock(str(target) + ".lock"):
            objects = _objects_to_fetch(client, bucket, key.strip("/"), ClientError)
            for object_key, size in objects:
                local = target if object_key == key.strip("/") else target / object_key[len(key.strip("/")) + 1 :]
                _download(client, bucket, object_key, size, local)
        return target
    except (BotoCoreError, ClientError) as e:
        raise S3FetchError(_offline_advice(bucket, key, e)) from e


def _objects_to_fetch(client, bucket: str, key: str, client_error: type[Exception]) -> list[tuple[str, int]]:
    """[(key, size)]: the object itself, or everything under `key/` when it is a prefix."""
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        return [(key, int(head["ContentLength"]))]
    except client_error as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key + "/"):
        found += [(o["Key"], int(o["Size"])) for o in page.get("Contents", []) if not o["Key"].endswith("/")]
    if not found:
        raise S3FetchError(f"s3://{bucket}/{key} is neither an object nor a prefix with objects under it")
    return found


def _download(client, bucket: str, key: str, size: int, local: Path) -> None:
    if local.is_file() and local.stat().st_size == size:
        return
    local.parent.mkdir(parents=True, exist_ok=True)
    partial = local.with_name(local.name + ".partial")
    logger.info("fetching s3://%s/%s (%.1f MB) into %s", bucket, key, size / 1e6, local)
    try:
        client.download_file(bucket, key, str(partial))
        os.replace(partial, local)
    finally:
        partial.unlink(missing_ok=True)


def _offline_advice(bucket: str, key: str, error: Exception) -> str:
    name = key.strip("/").split("/")[-1]
    is_file = "." in name
    target = f"/models/{name}"
    copy = f"aws s3 cp s3://{bucket}/{key} {target}" if is_file else f"aws s3 cp --recursive s3://{bucket}/{key} {target}"
    return (
        f"cannot fetch s3://{bucket}/{key} ({type(error).__name__}: {first_line(error)}). Check the credentials "
        f"(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or a role) and, for a store other than AWS, "
        f"AWS_ENDPOINT_URL. If this machine cannot reach the store, run `{copy}` where it can, copy that here, "
        f"and set the model's source to {target!r}."
    )
