"""The sha256 of a file, read in blocks: model files are gigabytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK_BYTES = 8 * 1024 * 1024


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()
