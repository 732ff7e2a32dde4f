"""The catalogue as a Serve deployment: one replica that every ingress and model replica asks, so an adapter
registered through one ingress replica is known to all of them. It also watches the adapter directory, when one is
configured (deployments/adapters/watch.py)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from deployments.adapters.catalog import AdapterCatalog, AdapterSpec, RegisteredAdapter
from deployments.adapters.watch import Found, scan, sync

logger = logging.getLogger(__name__)

CATALOG_DEPLOYMENT_NAME = "AdapterCatalog"


class AdapterCatalogServer:
    async def __init__(
        self, base_templates: dict[str, str], specs: list[AdapterSpec], *, watch_dir: str | None = None,
        watch_interval_s: float = 10.0,
    ) -> None:
        self._catalog = AdapterCatalog(base_templates, specs)
        self._watched: dict[str, Found] = {}
        self._warned: set[str] = set()
        self._watch = None
        if watch_dir is not None:
            directory = Path(watch_dir).expanduser()
            self._watch = asyncio.get_running_loop().create_task(self._watch_forever(directory, watch_interval_s))

    async def _watch_forever(self, directory: Path, interval_s: float) -> None:
        while True:
            try:
                # Reading a few small files; off the loop all the same, as the directory may be a network volume.
                found = await asyncio.to_thread(scan, directory, warned=self._warned)
                sync(self._catalog, found, self._watched, warned=self._warned)
            except Exception:  # the watcher must outlive a bad scan
                logger.exception("scanning the adapter directory %s failed", directory)
            await asyncio.sleep(interval_s)

    @staticmethod
    def get_deployment_options() -> dict[str, Any]:
        # One replica holds the truth; it needs no CPU of its own and must never scale out.
        return {"name": CATALOG_DEPLOYMENT_NAME, "num_replicas": 1, "ray_actor_options": {"num_cpus": 0}}

    async def register(self, spec: AdapterSpec) -> RegisteredAdapter:
        return self._catalog.register(spec, origin="api")

    async def remove(self, name: str) -> RegisteredAdapter:
        return self._catalog.remove(name)

    async def resolve(self, served_name: str) -> RegisteredAdapter | None:
        return self._catalog.resolve(served_name)

    async def listing(self) -> list[RegisteredAdapter]:
        return self._catalog.listing()

    async def revisions(self, base: str) -> dict[str, str]:
        return self._catalog.revisions(base)
