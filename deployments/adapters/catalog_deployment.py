"""The catalogue as a Serve deployment: one replica that every ingress and model replica asks, so an adapter
registered through one ingress replica is known to all of them."""

from __future__ import annotations

from typing import Any

from deployments.adapters.catalog import AdapterCatalog, AdapterSpec, RegisteredAdapter

CATALOG_DEPLOYMENT_NAME = "AdapterCatalog"


class AdapterCatalogServer:
    def __init__(self, base_templates: dict[str, str], specs: list[AdapterSpec]) -> None:
        self._catalog = AdapterCatalog(base_templates, specs)

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
