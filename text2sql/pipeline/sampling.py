"""Merge a request's sampling fields over the model's configured generation defaults."""

from __future__ import annotations

from text2sql.pipeline.engine import SamplingParams
from text2sql.pipeline.settings import GenerationDefaults


def merge_sampling(
    defaults: GenerationDefaults,
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    stop: list[str] | None = None,
    seed: int | None = None,
    presence_penalty: float = 0.0,
    frequency_penalty: float = 0.0,
) -> SamplingParams:
    return SamplingParams(
        max_tokens=max_tokens or defaults.max_tokens,
        temperature=defaults.temperature if temperature is None else temperature,
        top_p=defaults.top_p if top_p is None else top_p,
        # The model's stop strings always apply; a request can add its own.
        stop=list(dict.fromkeys([*defaults.stop, *(stop or [])])),
        seed=defaults.seed if seed is None else seed,
        presence_penalty=presence_penalty,
        frequency_penalty=frequency_penalty,
    )
