"""Schema-grammar sampling for llama.cpp that checks the likely tokens first.

llama-cpp-python puts the grammar sampler in front of the sampling chain, so every generated token
runs the grammar over the whole vocabulary (152k tokens for Qwen): with a schema grammar that made
constrained requests 5-10x slower than plain ones. llama.cpp's own server avoids this by sampling
first and running the grammar over the full vocabulary only when the chosen token is rejected.

`GrammarGuard` does the same as a logits processor: it asks the grammar about the `top_k` most likely
tokens only, keeps those it allows, and falls back to the whole vocabulary when it allows none. For
greedy decoding the chosen token is exactly the one the full grammar pass would give. With sampling
it draws from the allowed tokens among the top_k, where the full pass draws from the top_k allowed
ones: they differ only by tokens outside the raw top_k, which top_p/min_p nearly always drop anyway.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

# The layout of llama.cpp's llama_token_data: {int32 id; float logit; float p}.
_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)])
DEFAULT_TOP_K = 40  # llama-cpp-python's default top_k


class GrammarGuard:
    """A logits processor for one generation: builds its own grammar state, and frees it when done."""

    def __init__(self, llama: Any, grammar: str, *, top_k: int = DEFAULT_TOP_K) -> None:
        import llama_cpp

        self._api = llama_cpp
        # `_model.vocab` is how llama-cpp-python itself reaches the vocabulary (Llama.sample, add_grammar).
        self._sampler = llama_cpp.llama_sampler_init_grammar(llama._model.vocab, grammar.encode("utf-8"), b"root")
        if not self._sampler:
            raise ValueError("llama.cpp could not parse the grammar")
        self._top_k = top_k
        self._accepted_up_to: int | None = None  # how much of input_ids the grammar has consumed
        self.full_passes = 0  # how often no top_k token was allowed (for tests and tuning)

    def __call__(self, input_ids: Sequence[int], scores: np.ndarray) -> np.ndarray:
        # llama-cpp-python appends each sampled token to input_ids before asking for the next one:
        # feed the grammar what was generated since the last call (nothing on the first).
        if self._accepted_up_to is None:
            self._accepted_up_to = len(input_ids)
        for token in input_ids[self._accepted_up_to :]:
            self._api.llama_sampler_accept(self._sampler, int(token))
        self._accepted_up_to = len(input_ids)

        k = min(self._top_k, scores.shape[0] - 1)
        likely = np.argpartition(-scores, k)[:k]
        checked = self._grammar_logits(likely, scores[likely])
        if np.isfinite(checked).any():
            guarded = np.full_like(scores, -np.inf)
            guarded[likely] = checked
            return guarded
        self.full_passes += 1
        return self._grammar_logits(np.arange(scores.shape[0], dtype=np.intc), scores)

    def _grammar_logits(self, token_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        """The logits with every token the grammar forbids here set to -inf."""
        size = len(token_ids)
        buffer = (self._api.llama_token_data * size)()
        view = np.frombuffer(buffer, dtype=_TOKEN_DATA)
        view["id"], view["logit"], view["p"] = token_ids, logits, 0.0
        candidates = self._api.llama_token_data_array(data=buffer, size=size, selected=-1, sorted=False)
        self._api.llama_sampler_apply(self._sampler, ctypes.byref(candidates))
        return view["logit"].copy()

    def close(self) -> None:
        if self._sampler:
            self._api.llama_sampler_free(self._sampler)
            self._sampler = None

    def __del__(self) -> None:
        self.close()
