"""Prompt prefixes on disk, so that a replica that starts (scaled up from zero, restarted, added by autoscaling)
restores a database's schema state instead of reading the schema again: 30-40 s for Chinook on one core.

A state restores only into the same model file and context layout, so each (model file, n_ctx, n_batch,
llama-cpp-python version) has a directory of its own under the model cache. diskcache indexes it in SQLite and is
safe across processes, so every replica on a node shares it; it is bounded in bytes, least recently used out
first. Only new prefixes are written: a state sharing most of its tokens with a stored one (the next question on a
schema already stored) is not, so each schema is written once, not at every question.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from deployments.engines.llama_cpp_prefixes import common_prefix, same_prefix

logger = logging.getLogger(__name__)


def store_directory(root: Path, model_path: Path, *, n_ctx: int, n_batch: int) -> Path:
    """Where states of `model_path` under these context settings live; another file or layout gets another."""
    import llama_cpp

    stat = model_path.stat()
    identity = f"{model_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{n_ctx}|{n_batch}|{llama_cpp.__version__}"
    return root / f"{model_path.stem}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


class PrefixStore:
    """Sequence states by their tokens, on disk."""

    def __init__(self, directory: Path, capacity_bytes: int) -> None:
        import diskcache

        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._cache = diskcache.Cache(str(directory), size_limit=capacity_bytes, eviction_policy="least-recently-used")

    def longest_prefix(self, tokens: tuple[int, ...], *, longer_than: int) -> tuple[tuple[int, ...], Any] | None:
        """The stored (tokens, state) sharing the longest prefix with `tokens`, if longer than `longer_than`."""
        best, best_length = None, longer_than
        for key in self._cache.iterkeys():
            length = common_prefix(key, tokens)
            if length > best_length:
                best, best_length = key, length
        if best is None:
            return None
        state = self._cache.get(best)  # None if another replica's write evicted it meanwhile
        return (best, state) if state is not None else None

    def offer(self, tokens: tuple[int, ...], state: Any) -> bool:
        """Store `state` unless a stored one already holds most of its prefix; whether it was stored."""
        if any(same_prefix(key, tokens) for key in self._cache.iterkeys()):
            return False
        self._cache.set(tokens, state)
        logger.info("prompt prefix of %d tokens stored in %s", len(tokens), self.directory)
        return True

    def __len__(self) -> int:
        return len(self._cache)
