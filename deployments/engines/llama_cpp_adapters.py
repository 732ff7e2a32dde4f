"""The GGUF LoRA adapters loaded into one llama.cpp model, and which one its context applies.

llama.cpp loads an adapter once per model (`llama_adapter_lora_init`) and applies a set of them per context
(`llama_set_adapters_lora`); an empty set is the base model. Each request names its adapter; switching changes
the context's set. The KV cache still holds the previous prompt computed with the previous adapter, and
llama-cpp-python reuses a matching prefix of it, so a switch also resets the cache: the next prompt is read
again with the new weights.

Not thread-safe: the engine calls it only while it holds its generation lock, in the generation's thread.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

from text2sql.pipeline.engine import AdapterInvalid, AdapterNotLoaded


class LlamaLoras:
    def __init__(self, llama: Any) -> None:
        self._llama = llama
        self._adapters: dict[str, Any] = {}
        self._active: str | None = None
        # Saved prompt prefixes hold KV computed with one adapter's weights: each adapter has its own cache.
        self._prompt_caches: dict[str | None, Any] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._adapters)

    @property
    def active(self) -> str | None:
        return self._active

    def load(self, name: str, gguf_path: Path) -> None:
        """Load (or replace) adapter `name` from a GGUF LoRA file."""
        import llama_cpp

        adapter = llama_cpp.llama_adapter_lora_init(self._llama.model, str(gguf_path).encode("utf-8"))
        if not adapter:  # llama.cpp logs why and returns NULL
            raise AdapterInvalid(f"llama.cpp could not load adapter {name!r} from its GGUF LoRA {gguf_path.name}")
        if name in self._adapters:
            self.unload(name)
        self._adapters[name] = adapter

    def unload(self, name: str) -> None:
        import llama_cpp

        self.require(name)
        if self._active == name:
            self._apply(None)  # the context must not keep a pointer to freed weights
        llama_cpp.llama_adapter_lora_free(self._adapters.pop(name))
        self._prompt_caches.pop(name, None)

    def require(self, name: str | None) -> None:
        if name is not None and name not in self._adapters:
            loaded = ", ".join(self.names) or "none"
            raise AdapterNotLoaded(f"adapter {name!r} is not loaded on this model (loaded: {loaded})")

    def activate(self, name: str | None) -> None:
        """Make the context apply adapter `name` (None: the base model) for the next generation."""
        self.require(name)
        if name != self._active:
            self._apply(name)

    def _apply(self, name: str | None) -> None:
        import llama_cpp

        if name is None:
            llama_cpp.llama_set_adapters_lora(self._llama.ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapters[name])
            scales = (ctypes.c_float * 1)(1.0)
            llama_cpp.llama_set_adapters_lora(self._llama.ctx, adapters, 1, scales)
        self._swap_prompt_cache(self._active, name)
        self._active = name
        # The cached prompt was computed with the previous weights: never reuse it as a prefix.
        self._llama.reset()

    def _swap_prompt_cache(self, previous: str | None, name: str | None) -> None:
        cache = self._llama.cache
        if cache is None:
            return
        self._prompt_caches[previous] = cache
        self._llama.cache = self._prompt_caches.get(name) or cache.empty_like()
