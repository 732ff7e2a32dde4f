"""A peft LoRA adapter as a GGUF LoRA file for llama.cpp, converted once and cached.

The file is what llama.cpp's `convert_lora_to_gguf.py` writes: `general.type = adapter`, `adapter.type = lora`,
`adapter.lora.alpha`, the base model's `general.architecture`, and for each adapted weight `<gguf name>.lora_a`
and `.lora_b` in float32. peft's A is (r, in) and B is (out, r); the gguf writer reverses numpy shapes into
ggml's, which is the transposed layout llama.cpp checks for (a: ne = [in, r], b: ne = [r, out]).

Names come from gguf's TensorNameMap for the base model's architecture and block count, both read from the
base GGUF, so no HF config is needed. Llama-family GGUFs store q/k rows permuted for their rope layout; the
rows of B are permuted the same way so that B·A lands where the base weights are.

The converted file is cached under the model cache, keyed by the adapter files' sha256 and the base model's
architecture, so loading the same adapter again (another replica, a restart) skips the conversion.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from deployments.engines.peft_lora import PeftLora
from text2sql.pipeline.engine import AdapterInvalid

logger = logging.getLogger(__name__)

# Bumped whenever what the converter writes changes, so stale cached files are not reused.
CONVERTER_VERSION = 1
# Architectures whose GGUF q/k weights are the HF ones with rows permuted (convert_hf_to_gguf's LlamaModel).
_PERMUTED_QK = frozenset({"llama"})
# Architectures whose HF → GGUF conversion keeps linear weights as they are (besides the q/k permutation).
SUPPORTED_ARCHITECTURES = frozenset({"qwen2", "qwen3", "llama"})


@dataclass(frozen=True)
class GgufBase:
    """What the converter needs to know of the base model, read from its GGUF file."""

    architecture: str
    block_count: int
    head_count: int
    head_count_kv: int
    tensor_shapes: dict[str, tuple[int, int]]  # 2-D tensors: name -> (in_features, out_features), ggml's ne

    @classmethod
    def read(cls, gguf_path: Path) -> GgufBase:
        from gguf import GGUFReader

        reader = GGUFReader(gguf_path)

        def field(key: str) -> Any:
            value = reader.get_field(key)
            return None if value is None else value.contents()

        architecture = field("general.architecture")
        shapes = {
            tensor.name: (int(tensor.shape[0]), int(tensor.shape[1]))
            for tensor in reader.tensors
            if len(tensor.shape) == 2
        }
        head_count = field(f"{architecture}.attention.head_count") or 0
        return cls(
            architecture=architecture,
            block_count=int(field(f"{architecture}.block_count") or 0),
            head_count=int(head_count),
            head_count_kv=int(field(f"{architecture}.attention.head_count_kv") or head_count),
            tensor_shapes=shapes,
        )

    def tensor_name(self, module: str) -> str | None:
        """The GGUF weight name of an HF module (model.layers.3.self_attn.q_proj -> blk.3.attn_q.weight)."""
        from gguf import MODEL_ARCH_NAMES, get_tensor_name_map

        arch = next((a for a, name in MODEL_ARCH_NAMES.items() if name == self.architecture), None)
        if arch is None:
            return None
        name = get_tensor_name_map(arch, self.block_count).get_name(module)
        return None if name is None else f"{name}.weight"

    def module_shape(self, module: str) -> tuple[int, int] | None:
        name = self.tensor_name(module)
        return None if name is None else self.tensor_shapes.get(name)


def gguf_lora(lora: PeftLora, base: GgufBase, *, base_name: str, cache_dir: Path | None = None) -> Path:
    """The cached GGUF LoRA of `lora` for `base`, converted on first use; safe across processes."""
    from deployments.embedded_models import model_cache_dir

    check_convertible(lora, base, base_name=base_name)
    digest = _digest(lora, base)
    root = (cache_dir or model_cache_dir()) / "lora"
    target = root / f"{lora.directory.name}-{digest[:16]}.gguf"
    if target.is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_file():
            return target  # another replica converted it while we waited
        partial = target.with_name(target.name + ".partial")
        write_gguf_lora(lora, base, partial)
        os.replace(partial, target)  # readers see the whole file or none
    return target


def check_convertible(lora: PeftLora, base: GgufBase, *, base_name: str) -> None:
    if base.architecture not in SUPPORTED_ARCHITECTURES:
        raise AdapterInvalid(
            f"LoRA adapters on llama.cpp are converted for architectures {', '.join(sorted(SUPPORTED_ARCHITECTURES))}; "
            f"{base_name} is {base.architecture!r}"
        )
    lora.check_base(base.module_shape, base=base_name)


def write_gguf_lora(lora: PeftLora, base: GgufBase, path: Path) -> None:
    """Write the GGUF LoRA file (no checks, no cache: `gguf_lora` is the entry point)."""
    import gguf
    import numpy as np

    logger.info("converting LoRA adapter %s to GGUF for %s", lora.directory.name, base.architecture)
    tensors = lora.read_tensors()
    writer = gguf.GGUFWriter(str(path), base.architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    # llama.cpp scales B·A by alpha / r, r read from each tensor; rsLoRA's alpha / sqrt(r) is the same scale
    # with alpha multiplied by sqrt(r).
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, lora.scale * lora.rank)
    for module in lora.modules:
        name = base.tensor_name(module.name)
        assert name is not None  # check_convertible found every module
        a = np.ascontiguousarray(tensors[module.a_key], dtype=np.float32)
        b = tensors[module.b_key]
        if base.architecture in _PERMUTED_QK and name.split(".")[-2] in ("attn_q", "attn_k"):
            heads = base.head_count if name.split(".")[-2] == "attn_q" else base.head_count_kv
            b = permute_rows(b, heads)
        writer.add_tensor(f"{name}.lora_a", a)
        writer.add_tensor(f"{name}.lora_b", np.ascontiguousarray(b, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def permute_rows(weights: Any, heads: int) -> Any:
    """The row order llama.cpp's llama conversion gives q/k weights: per head, the two rope halves interleaved."""
    rows = weights.shape[0]
    return weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _digest(lora: PeftLora, base: GgufBase) -> str:
    digest = hashlib.sha256()
    for path in lora.files:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    key = [CONVERTER_VERSION, base.architecture, base.block_count, base.head_count, base.head_count_kv]
    digest.update(json.dumps(key).encode())
    return digest.hexdigest()

