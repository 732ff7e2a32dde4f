"""A request's byte budget for result rows, shared by all of its candidates and repair rounds.

Each execution may fetch at most what is left; memory per request stays bounded however many
candidates run.
"""

from __future__ import annotations

import threading

DEFAULT_MAX_RESULT_BYTES = 16 * 1024 * 1024


class ByteBudget:
    def __init__(self, total: int = DEFAULT_MAX_RESULT_BYTES) -> None:
        if total <= 0:
            raise ValueError(f"a byte budget must be positive, got {total}")
        self.total = total
        self._used = 0
        self._lock = threading.Lock()  # executions run in worker threads

    @property
    def remaining(self) -> int:
        with self._lock:
            return max(0, self.total - self._used)

    def spend(self, used: int) -> None:
        with self._lock:
            self._used += max(0, used)

    def exhaust(self) -> None:
        """A result was cut at the budget: what is left would not hold another row worth having."""
        with self._lock:
            self._used = max(self._used, self.total)
