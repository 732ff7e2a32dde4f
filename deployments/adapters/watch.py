"""A watched adapter directory: every finished training output dropped into it is served, and removing it stops
serving it, with no API call and no restart.

An adapter directory qualifies when it holds peft's `adapter_config.json` and `adapter_model.safetensors`, and the
training job's `text2sql-adapter.json` naming the served model it adapts (`served_base`) and its prompt template.
Its name is the metadata's `name`. A directory is registered again when its weights change (a new revision, so
replicas reload it); one that is incomplete or names no served base is skipped with a warning, once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from deployments.adapters.catalog import AdapterCatalog, AdapterSpec
from deployments.errors import ApiError

logger = logging.getLogger(__name__)

METADATA = "text2sql-adapter.json"  # written by training/adapter_output.py
WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class Found:
    spec: AdapterSpec
    fingerprint: tuple[int, int]  # the weights' mtime (ns) and size: a retrained adapter differs


def scan(directory: Path, *, warned: set[str]) -> dict[str, Found]:
    """name -> what is in `directory` now. Directories still being written (no weights or metadata yet) wait."""
    found: dict[str, Found] = {}
    if not directory.is_dir():
        return found
    for adapter in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.endswith(".partial")):
        weights, metadata_file = adapter / WEIGHTS, adapter / METADATA
        if not (weights.is_file() and metadata_file.is_file() and (adapter / "adapter_config.json").is_file()):
            continue
        try:
            metadata = json.loads(metadata_file.read_text())
            spec = AdapterSpec(
                name=metadata["name"], base=metadata["served_base"], path=str(adapter.resolve()),
                prompt_template=metadata.get("prompt_template"),
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            _warn_once(warned, str(adapter), f"watched adapter {adapter} skipped: {METADATA} lacks {e}")
            continue
        stat = weights.stat()
        found[spec.name] = Found(spec, (stat.st_mtime_ns, stat.st_size))
    return found


def sync(catalog: AdapterCatalog, found: dict[str, Found], served: dict[str, Found], *, warned: set[str]) -> None:
    """Make the catalogue's watched adapters what `found` says; `served` (name -> Found) is updated in place.
    Adapters registered through the API or the config are never touched."""
    for name in [n for n in served if n not in found or found[n] != served[n]]:
        del served[name]
        try:
            catalog.remove(name)
        except ApiError:
            continue  # already deleted through the API
        logger.info("watched adapter %s removed", name)
    for name, item in found.items():
        if name in served:
            continue
        try:
            catalog.register(item.spec, origin="watch")
        except ApiError as e:  # a name taken by the API or config, an unknown base, a template mismatch
            _warn_once(warned, f"{name}:{item.fingerprint}", f"watched adapter {item.spec.path} skipped: {e.message}")
            continue
        served[name] = item
        logger.info("watched adapter %s registered on %s", name, item.spec.base)


def _warn_once(warned: set[str], key: str, message: str) -> None:
    if key not in warned:
        warned.add(key)
        logger.warning("%s", message)
