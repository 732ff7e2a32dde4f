"""The adapters one model replica holds: loaded on first use through Serve's model multiplexing, at most
`max_loaded` at a time (least recently used out first), and dropped once the catalogue no longer lists them.

Serve's multiplexing keeps the LRU and tells the routers which replica holds which adapter, so requests for an
adapter prefer replicas that already have it. This class adds what Serve cannot know: where an adapter's files
are, that a re-registered name must be reloaded, and that a deleted one must go.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from deployments.adapters.catalog import RegisteredAdapter
from deployments.model_source import parse_model_source, resolve_model_path
from text2sql.pipeline.engine import Engine

logger = logging.getLogger(__name__)

Multiplexer = Callable[[Callable[[str], Awaitable["LoadedAdapter"]]], Callable[[str], Awaitable["LoadedAdapter"]]]


@dataclass
class LoadedAdapter:
    adapter: RegisteredAdapter
    load_ms: float
    unload: Callable[[], Awaitable[None]]
    unloaded: bool = False
    loaded_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # Serve's LRU calls `__del__` (awaited when async) on eviction. Set on the instance, so only Serve calls
        # it: Python's garbage collector looks special methods up on the class and never sees this one.
        self.__del__ = self.release

    async def release(self) -> None:
        if not self.unloaded:
            self.unloaded = True
            await self.unload()


class ReplicaAdapters:
    def __init__(self, engine: Engine, *, max_loaded: int, multiplexed: Multiplexer) -> None:
        self._engine = engine
        self._wanted: dict[str, RegisteredAdapter] = {}
        self._loaded: dict[str, LoadedAdapter] = {}
        self._lock = asyncio.Lock()
        # Serve keeps its LRU as an attribute of the function it wraps, which a bound method cannot hold.
        async def load(model_id: str) -> LoadedAdapter:
            return await self._load(model_id)

        self._get = multiplexed(load)
        self.max_loaded = max_loaded

    async def ensure(self, adapter: RegisteredAdapter) -> LoadedAdapter:
        """Make `adapter` ready on this replica's engine; the request's multiplexed model id is its model id."""
        self._wanted[adapter.model_id] = adapter
        loaded = await self._get(adapter.model_id)
        if loaded.unloaded or loaded.adapter.revision != adapter.revision:
            # Deleted and registered again, or re-registered with new files: Serve's LRU still holds the old one.
            fresh = await self._load(adapter.model_id)
            loaded.adapter, loaded.load_ms, loaded.unloaded = fresh.adapter, fresh.load_ms, False
            self._loaded[adapter.model_id] = loaded  # one record per adapter: the one Serve's LRU evicts
        return loaded

    async def _load(self, model_id: str) -> LoadedAdapter:
        adapter = self._wanted[model_id]
        started = time.perf_counter()
        # Fetching from s3:// or the hub, and converting, must not block the replica's event loop.
        path = await asyncio.to_thread(resolve_model_path, parse_model_source(adapter.path))
        async with self._lock:
            await self._engine.load_adapter(model_id, str(path))
        loaded = LoadedAdapter(
            adapter=adapter, load_ms=(time.perf_counter() - started) * 1000, unload=lambda: self._unload(model_id)
        )
        self._loaded[model_id] = loaded
        logger.info("adapter %s loaded from %s in %.0f ms", model_id, adapter.path, loaded.load_ms)
        return loaded

    async def _unload(self, model_id: str) -> None:
        entry = self._loaded.pop(model_id, None)
        if entry is not None:
            entry.unloaded = True
        async with self._lock:
            await self._engine.unload_adapter(model_id)
        logger.info("adapter %s unloaded", model_id)

    async def sync(self, listed: dict[str, str]) -> list[str]:
        """Unload what the catalogue no longer lists (or lists with a new revision); the dropped model ids."""
        stale = [
            model_id for model_id, loaded in self._loaded.items()
            if listed.get(model_id) != loaded.adapter.revision
        ]
        for model_id in stale:
            await self._loaded[model_id].release()
        return stale

    def loaded(self) -> list[str]:
        return sorted(self._loaded)
