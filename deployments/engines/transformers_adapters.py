"""peft LoRA adapters on the Transformers engine's model: loading, unloading, and which one a batch runs with.

The first adapter wraps the model in a `PeftModel`; later ones are added to it by name. A batch runs with one
adapter active (`set_adapter`), or with all of them disabled for the base model (`disable_adapter()`), so a
batch never mixes adapters (the engine groups rows by adapter). Unloading the last adapter unwraps the model
again, so a model without adapters runs exactly as before any was loaded.

Served names such as `qwen2.5-coder-0.5b:sql` cannot be peft adapter names (they become torch module keys, which
may not hold a dot), so each adapter gets an internal peft name of its own.

Every call holds the engine's model lock and runs in a worker thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deployments.engines.peft_lora import read_peft_lora
from text2sql.pipeline.engine import AdapterInvalid, AdapterNotLoaded


class PeftAdapters:
    def __init__(self) -> None:
        self._peft_names: dict[str, str] = {}  # served name -> peft adapter name
        self._loaded = 0

    @property
    def names(self) -> list[str]:
        return sorted(self._peft_names)

    def require(self, name: str | None) -> None:
        if name is not None and name not in self._peft_names:
            loaded = ", ".join(self.names) or "none"
            raise AdapterNotLoaded(f"adapter {name!r} is not loaded on this model (loaded: {loaded})")

    def load(self, model: Any, name: str, directory: Path, *, base: str) -> Any:
        """Load (or replace) adapter `name`; returns the model to generate with from now on."""
        from peft import PeftModel

        lora = read_peft_lora(directory)
        base_model = model.get_base_model() if isinstance(model, PeftModel) else model
        lora.check_base(lambda module: _linear_shape(base_model, module), base=base)
        if name in self._peft_names:
            model = self.unload(model, name)
        self._loaded += 1
        peft_name = f"adapter_{self._loaded}"
        try:
            if isinstance(model, PeftModel):
                model.load_adapter(str(directory), adapter_name=peft_name, is_trainable=False)
            else:
                model = PeftModel.from_pretrained(model, str(directory), adapter_name=peft_name, is_trainable=False)
        except (ValueError, RuntimeError, KeyError) as e:  # peft's own checks, past ours
            model = self._forget(model, peft_name)
            raise AdapterInvalid(f"peft could not load adapter {name!r}: {e}") from e
        model.eval()
        self._peft_names[name] = peft_name
        return model

    def unload(self, model: Any, name: str) -> Any:
        """Free adapter `name`; returns the model to generate with from now on."""
        self.require(name)
        return self._forget(model, self._peft_names.pop(name))

    @contextlib.contextmanager
    def active(self, model: Any, name: str | None) -> Iterator[None]:
        """Generate inside this block with adapter `name`, or with none (the base model)."""
        self.require(name)
        if not self._peft_names:  # a plain model: nothing to switch
            yield
        elif name is None:
            with model.disable_adapter():
                yield
        else:
            model.set_adapter(self._peft_names[name])
            yield

    def _forget(self, model: Any, peft_name: str) -> Any:
        from peft import PeftModel

        if not isinstance(model, PeftModel):
            return model
        if not self._peft_names:
            # The last one: take every LoRA layer out (nothing merged), back to the plain model.
            return model.unload()
        if peft_name in model.peft_config:
            model.delete_adapter(peft_name)
        return model


def _linear_shape(model: Any, module: str) -> tuple[int, int] | None:
    try:
        layer = model.get_submodule(module)
    except AttributeError:
        return None
    in_features, out_features = getattr(layer, "in_features", None), getattr(layer, "out_features", None)
    if in_features is None or out_features is None:
        return None
    return int(in_features), int(out_features)
