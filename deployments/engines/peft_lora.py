"""A peft LoRA adapter directory, read and checked before any engine loads it.

Both engines take the same thing: a directory with `adapter_config.json` and `adapter_model.safetensors`, as
peft's `save_pretrained` writes it. Everything that would make an engine fail halfway (missing files, another
peft method, DoRA, fully trained modules, per-module ranks, shapes made for another base model) is refused here
with an `AdapterInvalid` that says what is wrong, so a bad adapter never leaves an engine half-changed.

Only the safetensors header is read to check shapes; the weights are read by whoever converts or loads them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from text2sql.pipeline.engine import AdapterInvalid

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_PEFT_PREFIX = "base_model.model."
_A_SUFFIX = ".lora_A.weight"
_B_SUFFIX = ".lora_B.weight"
_PROBLEMS_SHOWN = 3

# The base model's (in_features, out_features) of a module, or None when it has no such linear layer.
BaseShape = Callable[[str], "tuple[int, int] | None"]


@dataclass(frozen=True)
class LoraModule:
    """One adapted linear layer: its module name in the HF model, and the shapes peft saved."""

    name: str  # e.g. model.layers.0.self_attn.q_proj
    a_key: str
    b_key: str
    a_shape: tuple[int, int]  # (rank, in_features)
    b_shape: tuple[int, int]  # (out_features, rank)

    @property
    def rank(self) -> int:
        return self.a_shape[0]


@dataclass(frozen=True)
class PeftLora:
    directory: Path
    config: dict[str, Any]
    modules: tuple[LoraModule, ...]

    @property
    def files(self) -> tuple[Path, Path]:
        return self.directory / ADAPTER_CONFIG, self.directory / ADAPTER_WEIGHTS

    @property
    def rank(self) -> int:
        return int(self.config["r"])

    @property
    def scale(self) -> float:
        """What peft multiplies B·A by: alpha / r, or alpha / sqrt(r) with rsLoRA."""
        alpha = float(self.config.get("lora_alpha", 8))
        return alpha / math.sqrt(self.rank) if self.config.get("use_rslora") else alpha / self.rank

    def check_base(self, base_shape: BaseShape, *, base: str) -> None:
        """Refuse an adapter whose layers the base model lacks or has in other sizes (made for another model)."""
        problems = []
        for module in self.modules:
            shape = base_shape(module.name)
            expected = (module.a_shape[1], module.b_shape[0])
            if shape is None:
                problems.append(f"it adapts {module.name}, which {base} has no linear layer for")
            elif tuple(shape) != expected:
                problems.append(
                    f"{module.name} is {expected[0]}→{expected[1]} in the adapter but {shape[0]}→{shape[1]} in {base}"
                )
        if problems:
            more = len(problems) - _PROBLEMS_SHOWN
            shown = "; ".join(problems[:_PROBLEMS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
            raise AdapterInvalid(f"adapter {self.directory.name} was not made for {base}: {shown}")

    def read_tensors(self) -> dict[str, Any]:
        """Every saved tensor as a float32 numpy array, by its key."""
        import numpy as np
        from safetensors import safe_open

        tensors: dict[str, Any] = {}
        weights = self.directory / ADAPTER_WEIGHTS
        try:
            with safe_open(str(weights), framework="numpy") as file:
                for key in file.keys():
                    tensors[key] = np.asarray(file.get_tensor(key), dtype=np.float32)
        except TypeError:
            # numpy has no bfloat16; torch reads it (bf16 adapters come from torch training anyway).
            tensors = _read_with_torch(weights)
        return tensors


def read_peft_lora(directory: Path) -> PeftLora:
    """The adapter in `directory`, checked; AdapterInvalid says what is wrong with it."""
    directory = Path(directory)
    if not directory.is_dir():
        raise AdapterInvalid(f"adapter path {directory.name!r} is not a directory")
    missing = [name for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS) if not (directory / name).is_file()]
    if missing:
        raise AdapterInvalid(
            f"adapter directory {directory.name!r} lacks {' and '.join(missing)}; a peft LoRA adapter saved with "
            "save_pretrained(..., safe_serialization=True) has both"
        )
    config = _read_config(directory)
    modules = _read_modules(directory, config)
    return PeftLora(directory=directory, config=config, modules=modules)


def _read_config(directory: Path) -> dict[str, Any]:
    try:
        config = json.loads((directory / ADAPTER_CONFIG).read_text())
    except (OSError, ValueError) as e:
        raise AdapterInvalid(f"{ADAPTER_CONFIG} of adapter {directory.name!r} is not valid JSON: {e}") from e
    if not isinstance(config, dict):
        raise AdapterInvalid(f"{ADAPTER_CONFIG} of adapter {directory.name!r} is not a JSON object")
    peft_type = config.get("peft_type")
    if peft_type != "LORA":
        raise AdapterInvalid(f"adapter {directory.name!r} is a {peft_type or 'unknown'} adapter; only LoRA is served")
    unsupported = {
        "use_dora": "DoRA",
        "modules_to_save": "fully trained modules (modules_to_save)",
        "rank_pattern": "per-module ranks (rank_pattern)",
        "alpha_pattern": "per-module alphas (alpha_pattern)",
        "fan_in_fan_out": "fan_in_fan_out layers",
        "lora_bias": "LoRA biases",
    }
    used = [label for key, label in unsupported.items() if config.get(key)]
    if used:
        raise AdapterInvalid(f"adapter {directory.name!r} uses {', '.join(used)}, which the engines do not serve")
    if not isinstance(config.get("r"), int) or config["r"] <= 0:
        raise AdapterInvalid(f"{ADAPTER_CONFIG} of adapter {directory.name!r} has no positive rank 'r'")
    return config


def _read_modules(directory: Path, config: dict[str, Any]) -> tuple[LoraModule, ...]:
    from safetensors import safe_open

    try:
        with safe_open(str(directory / ADAPTER_WEIGHTS), framework="numpy") as file:
            shapes = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}
    except Exception as e:  # safetensors raises its own error types for a corrupt header
        raise AdapterInvalid(f"{ADAPTER_WEIGHTS} of adapter {directory.name!r} cannot be read: {e}") from e
    pairs: dict[str, dict[str, str]] = {}
    for key in shapes:
        for suffix, half in ((_A_SUFFIX, "a"), (_B_SUFFIX, "b")):
            if key.endswith(suffix):
                name = key[: -len(suffix)].removeprefix(_PEFT_PREFIX)
                pairs.setdefault(name, {})[half] = key
                break
        else:
            raise AdapterInvalid(f"adapter {directory.name!r} holds {key}, which is not a LoRA A or B matrix")
    if not pairs:
        raise AdapterInvalid(f"adapter {directory.name!r} holds no LoRA matrices")
    modules = []
    for name, keys in sorted(pairs.items()):
        if set(keys) != {"a", "b"}:
            raise AdapterInvalid(f"adapter {directory.name!r} has only one of the two LoRA matrices for {name}")
        a_shape, b_shape = shapes[keys["a"]], shapes[keys["b"]]
        if len(a_shape) != 2 or len(b_shape) != 2 or a_shape[0] != b_shape[1] or a_shape[0] != config["r"]:
            raise AdapterInvalid(
                f"adapter {directory.name!r}: {name} has LoRA matrices {a_shape} and {b_shape}, "
                f"not (r, in) and (out, r) with r={config['r']}"
            )
        modules.append(LoraModule(name=name, a_key=keys["a"], b_key=keys["b"], a_shape=a_shape, b_shape=b_shape))
    return tuple(modules)


def _read_with_torch(weights: Path) -> dict[str, Any]:
    try:
        import torch
        from safetensors.torch import load_file
    except ImportError as e:
        raise AdapterInvalid(
            f"{weights.parent.name!r} stores bfloat16 weights, which need torch to read; save the adapter in "
            "float16 or float32, or install the [transformers] extra"
        ) from e
    return {key: tensor.to(torch.float32).numpy() for key, tensor in load_file(str(weights)).items()}
