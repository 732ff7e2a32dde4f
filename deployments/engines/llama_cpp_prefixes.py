"""Several prompt prefixes per llama.cpp model instead of one.

llama.cpp's context holds the tokens it evaluated last; a prompt that starts the same way (the same schema)
skips their prefill, any other prompt evicts them. With questions on several databases, each one after a
question on another database reads its whole schema again (20-40 s for Chinook on one core). llama-cpp-python
keeps earlier states in a cache (`Llama.set_cache`) and restores the one with the longest common prefix, but its
`save_state` copies the whole context state plus the logits of a full batch (for Qwen's 152k-token vocabulary,
over 300 MB a save). Here a state is sequence 0's KV cells alone (about 12 KB a token for the 0.5B), no logits:
generation re-evaluates the prompt's last token anyway, which gives the logits back.

`PrefixCache` is llama-cpp-python's RAM cache (LRU, bounded in bytes) that also drops the entries a new one
supersedes: the previous questions on the same schema, so a few databases fit rather than many copies of one.
With a `PrefixStore` (llama_cpp_prefix_store.py) behind it, new prefixes also go to disk, and a prefix missing from
RAM, or shorter there, is read back from disk: a replica that just started finds the schemas others have read.
"""

from __future__ import annotations

import copy
import ctypes
import logging
from typing import Any

import numpy as np
from llama_cpp import LlamaRAMCache, LlamaState

logger = logging.getLogger(__name__)
SEQUENCE = 0
# An older entry sharing this share of its tokens with a new one is the same prompt prefix: the new one replaces it.
SUPERSEDED_SHARE = 0.75


def save_sequence_state(llama: Any) -> LlamaState:
    """Sequence 0's KV cells and the tokens they hold; no logits."""
    ctx = llama._ctx.ctx
    import llama_cpp

    size = llama_cpp.llama_state_seq_get_size(ctx, SEQUENCE)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, SEQUENCE)
    if written == 0 and llama.n_tokens > 0:
        raise RuntimeError("llama.cpp could not copy the sequence state")
    return LlamaState(
        input_ids=llama.input_ids.copy(), scores=np.empty((0, 0), dtype=np.single), n_tokens=llama.n_tokens,
        llama_state=ctypes.string_at(buffer, written), llama_state_size=written, seed=llama._seed,
    )


def load_sequence_state(llama: Any, state: LlamaState) -> None:
    """Replace the context's cells with a saved sequence state; the next generation continues from its tokens."""
    import llama_cpp

    ctx = llama._ctx.ctx
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
    buffer = (ctypes.c_uint8 * state.llama_state_size).from_buffer_copy(state.llama_state)
    if llama_cpp.llama_state_seq_set_data(ctx, buffer, state.llama_state_size, SEQUENCE) != state.llama_state_size:
        llama.n_tokens = 0  # nothing usable is left: the next prompt is read in full
        raise RuntimeError("llama.cpp could not restore the sequence state")
    llama.input_ids = state.input_ids.copy()
    llama.n_tokens = state.n_tokens
    if state.seed is not None:  # states from the disk store carry none: not another process's sampling seed
        llama._seed = state.seed


class PrefixCache(LlamaRAMCache):
    """LRU of sequence states, at most `capacity_bytes`; a new state replaces those it supersedes. `store`, when
    given, is the disk tier behind it."""

    def __init__(self, capacity_bytes: int, store: Any | None = None) -> None:
        super().__init__(capacity_bytes)
        self.store = store

    def __getitem__(self, key: Any) -> LlamaState:
        tokens = tuple(key)
        in_ram = self._find_longest_prefix_key(tokens)
        # The disk is read only when RAM lacks this prompt's prefix (a replica that just started, another
        # database): not on every question, where RAM already holds it.
        if self.store is not None and not same_prefix(in_ram, tokens):
            found = self.store.longest_prefix(tokens, longer_than=common_prefix(in_ram, tokens) if in_ram else 0)
            if found is not None:
                stored_tokens, state = found
                LlamaRAMCache.__setitem__(self, stored_tokens, state)  # into RAM as it is, not offered back
                return state
        if in_ram is None:
            raise KeyError("no cached prefix")
        self.cache_state.move_to_end(in_ram)
        return self.cache_state[in_ram]

    def __setitem__(self, key: Any, value: LlamaState) -> None:
        new = tuple(key)
        superseded = [old for old in self.cache_state if old != new and same_prefix(old, new)]
        for old in superseded:
            del self.cache_state[old]
        super().__setitem__(new, value)
        # A prefix that replaced one in RAM is already on disk: that one was offered, or came from there.
        if self.store is not None and not superseded:
            try:
                self.store.offer(new, _without_seed(value))
            except Exception:  # a full or read-only disk costs the next replica a prefill, never this answer
                logger.exception("could not store a prompt prefix in %s", self.store.directory)

    def empty_like(self) -> PrefixCache:
        """A cache of the same size without the disk tier (for an adapter: its states differ from the base's)."""
        return PrefixCache(self.capacity_bytes)


def _without_seed(state: LlamaState) -> LlamaState:
    """The state as another process should restore it: its KV cells and tokens, not this process's seed."""
    shared = copy.copy(state)
    shared.seed = None
    return shared


def same_prefix(old: tuple | None, new: tuple) -> bool:
    """Whether `new` shares so much of `old` that it is the same prompt prefix (the same schema)."""
    return old is not None and common_prefix(old, new) >= SUPERSEDED_SHARE * len(old)


def common_prefix(a: tuple, b: tuple) -> int:
    length = min(len(a), len(b))
    if length == 0:
        return 0
    left, right = np.asarray(a[:length]), np.asarray(b[:length])
    differ = np.flatnonzero(left != right)
    return int(differ[0]) if differ.size else length
