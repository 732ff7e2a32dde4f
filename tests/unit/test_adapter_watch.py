"""The watched adapter directory: what appears is registered, what changes is re-registered (a new revision), what
goes is removed; incomplete or foreign directories and names taken through the API are left alone."""

from __future__ import annotations

import json
import os
from pathlib import Path

from deployments.adapters.catalog import AdapterCatalog, AdapterSpec
from deployments.adapters.watch import scan, sync

BASES = {"qwen": "qwen-chat", "coder": "sqlcoder-llama3"}


def drop_adapter(root: Path, directory: str, *, name: str, base: str = "qwen", template: str = "qwen-chat") -> Path:
    adapter = root / directory
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8}))
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "text2sql-adapter.json").write_text(
        json.dumps({"name": name, "served_base": base, "prompt_template": template})
    )
    return adapter


class Watcher:
    def __init__(self, root: Path, catalog: AdapterCatalog) -> None:
        self.root, self.catalog, self.served, self.warned = root, catalog, {}, set()

    def tick(self) -> dict[str, str]:
        sync(self.catalog, scan(self.root, warned=self.warned), self.served, warned=self.warned)
        return {a.name: a.revision for a in self.catalog.listing()}


def test_adapters_come_and_go_with_their_directories(tmp_path):
    catalog = AdapterCatalog(BASES)
    watcher = Watcher(tmp_path, catalog)
    assert watcher.tick() == {}
    adapter = drop_adapter(tmp_path, "run-1", name="spider")
    first = watcher.tick()
    assert set(first) == {"spider"} and catalog.resolve("qwen:spider").origin == "watch"
    assert watcher.tick() == first  # unchanged files: the same revision, nothing reloads

    (adapter / "adapter_model.safetensors").write_bytes(b"retrained weights")
    os.utime(adapter / "adapter_model.safetensors", ns=(1, 1))
    assert watcher.tick()["spider"] != first["spider"]  # retrained: replicas load the new weights

    for path in adapter.iterdir():
        path.unlink()
    adapter.rmdir()
    assert watcher.tick() == {}


def test_incomplete_foreign_and_clashing_directories_are_skipped(tmp_path, caplog):
    catalog = AdapterCatalog(BASES)
    catalog.register(AdapterSpec(name="taken", base="qwen", path="/elsewhere"), origin="api")
    watcher = Watcher(tmp_path, catalog)
    (tmp_path / "half-written").mkdir()
    (tmp_path / "half-written" / "adapter_config.json").write_text("{}")
    drop_adapter(tmp_path, "no-base", name="orphan", base="unknown-model")
    drop_adapter(tmp_path, "wrong-template", name="mismatch", template="sqlcoder-llama3")
    drop_adapter(tmp_path, "clash", name="taken")
    drop_adapter(tmp_path, "good", name="good")
    assert set(watcher.tick()) == {"taken", "good"}
    assert catalog.resolve("taken").path == "/elsewhere"  # the API's adapter is not replaced
    assert "unknown-model" in caplog.text and "sqlcoder-llama3" in caplog.text
    warnings = len(caplog.records)
    watcher.tick()
    assert len(caplog.records) == warnings  # each problem is reported once, not every scan


def test_an_adapter_deleted_through_the_api_stays_deleted_until_its_files_change(tmp_path):
    catalog = AdapterCatalog(BASES)
    watcher = Watcher(tmp_path, catalog)
    drop_adapter(tmp_path, "run", name="spider")
    watcher.tick()
    catalog.remove("spider")
    assert watcher.tick() == {}
