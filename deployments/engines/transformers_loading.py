"""Loading a causal language model for the Transformers engine: dtype, device map, bitsandbytes, GGUF files.

A model path is an HF model directory (a local one, or a hub id that `model_source` downloaded) or a GGUF file.
A GGUF goes through transformers' GGUF loader, which dequantizes it into a plain model. That takes a minute even
for the 0.5B, so the plain checkpoint is saved once under the model cache, keyed by the file's sha256, size and
the dtype, and every later start loads that checkpoint (a file lock keeps two replicas from converting at once,
as `embedded_models` does). Serving, saving and training then all see an ordinary, unquantized model.

Everything heavy (torch, transformers) is imported inside the functions, so this module imports without them.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock

from deployments.digests import file_sha256
from text2sql.pipeline.engine import EngineError

if TYPE_CHECKING:
    from deployments.engines.settings import TransformersSettings

logger = logging.getLogger(__name__)

TORCH_DTYPES: dict[str, str] = {"auto": "auto", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
CONVERSION_MARKER = "text2sql-gguf-source.json"


def is_gguf(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".gguf"


def load_kwargs(settings: TransformersSettings) -> dict[str, Any]:
    """`from_pretrained` keyword arguments for the settings; a bitsandbytes config when 4 or 8 bits are asked for."""
    kwargs: dict[str, Any] = {
        "dtype": TORCH_DTYPES[settings.torch_dtype],
        "trust_remote_code": settings.trust_remote_code,
    }
    if settings.device_map is not None:
        kwargs["device_map"] = settings.device_map
    if settings.load_in_4bit or settings.load_in_8bit:
        from transformers import BitsAndBytesConfig

        # The 4-bit weights compute in the chosen dtype; 'auto' and fp32 compute in bf16, as QLoRA does.
        compute = TORCH_DTYPES[settings.torch_dtype] if settings.torch_dtype in ("bf16", "fp16") else "bfloat16"
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=settings.load_in_4bit,
            load_in_8bit=settings.load_in_8bit,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute,
        )
    return kwargs


def load_model(model_path: Path, settings: TransformersSettings, *, cache_dir: Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) for a model directory or GGUF file, in eval mode, on the settings' devices."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = converted_checkpoint(model_path, settings, cache_dir=cache_dir) if is_gguf(model_path) else model_path
    if not directory.is_dir():
        raise EngineError(
            f"{model_path.name} is neither a Hugging Face model directory nor a .gguf file; backend transformers "
            "needs one of them"
        )
    logger.info("loading %s with transformers (%s)", directory, settings.model_dump(exclude={"backend"}))
    tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=settings.trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(directory, **load_kwargs(settings))
    model.eval()
    return model, tokenizer


def converted_checkpoint(gguf: Path, settings: TransformersSettings, *, cache_dir: Path | None = None) -> Path:
    """The plain checkpoint of a GGUF file, converted on first use and cached; safe across processes."""
    from deployments.embedded_models import model_cache_dir

    size = gguf.stat().st_size
    digest = file_sha256(gguf)
    dtype = _conversion_dtype(settings)
    root = (cache_dir or model_cache_dir()) / "transformers"
    target = root / f"{gguf.stem}-{digest[:16]}-{dtype}"
    source = {"gguf": gguf.name, "sha256": digest, "size_bytes": size, "dtype": dtype}
    if _converted(target, source):
        return target
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if _converted(target, source):
            return target  # another replica converted it while we waited
        _convert(gguf, target, source, trust_remote_code=settings.trust_remote_code)
    return target


def forget_gguf_quantization(model: Any) -> None:
    """Drop the GGUF quantizer's bookkeeping from a dequantized model, so it saves and trains as a plain one."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if getattr(model, "is_quantized", False):
        model.is_quantized = False
    for config in {id(c): c for c in (model.config, model.config.get_text_config(decoder=True))}.values():
        # Saved into config.json, it would send the next load back through the GGUF quantizer.
        config.__dict__.pop("quantization_config", None)


def _conversion_dtype(settings: TransformersSettings) -> str:
    # 'auto' keeps the GGUF's own dtype (float32 for quantized files), which loading then casts to fp32 or
    # quantizes to 4/8 bits; bf16 and fp16 convert straight to half size, for big models.
    return TORCH_DTYPES[settings.torch_dtype] if settings.torch_dtype in ("bf16", "fp16") else "auto"


def _convert(gguf: Path, target: Path, source: dict[str, Any], *, trust_remote_code: bool) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    logger.info("converting %s to a transformers checkpoint in %s (once)", gguf, target)
    try:
        # dequantize=True: with the optional `kernels` package transformers would otherwise keep GGUF blocks.
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            dtype=source["dtype"],
            quantization_config=GgufConfig(dequantize=True),
            trust_remote_code=trust_remote_code,
        )
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError, OSError) as e:  # unsupported architecture, unreadable file
        raise EngineError(f"transformers could not load {gguf.name}: {e}") from e
    forget_gguf_quantization(model)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    (partial / CONVERSION_MARKER).write_text(json.dumps(source, indent=2) + "\n")
    del model
    gc.collect()
    shutil.rmtree(target, ignore_errors=True)  # a stale, unmarked conversion
    os.replace(partial, target)  # readers see the whole checkpoint or none


def _converted(target: Path, source: dict[str, Any]) -> bool:
    marker = target / CONVERSION_MARKER
    try:
        return json.loads(marker.read_text()) == source
    except (OSError, ValueError):
        return False
