"""Settings measured in turns (A, B, A, B, ...) on a noisy machine, and their medians."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)


def in_turns(settings: Iterable[str], repeats: int, measure: Callable[[str], dict]) -> dict[str, list[dict]]:
    """Each setting's runs, `repeats` rounds of every setting once."""
    order = list(settings)
    runs: dict[str, list[dict]] = {setting: [] for setting in order}
    for repeat in range(repeats):
        for setting in order:
            run = measure(setting)
            logger.info("repeat %d, %s: %s", repeat, setting, run)
            runs[setting].append(run)
    return runs


def medians(runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Per setting, the median of every measured key."""
    return {setting: {key: statistics.median(r[key] for r in results) for key in results[0]} for setting, results in runs.items()}
