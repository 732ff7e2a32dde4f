"""The peft → GGUF LoRA converter on tiny synthetic adapters (no torch, no model): what llama.cpp reads back.

Each adapter is written the way peft's save_pretrained writes one (adapter_config.json and safetensors keys
`base_model.model.<module>.lora_A.weight` / `.lora_B.weight`); the result is read with gguf's own GGUFReader.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gguf")
pytest.importorskip("safetensors")

from gguf import GGUFReader, GGUFWriter  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from deployments.engines.gguf_lora import GgufBase, gguf_lora, permute_rows  # noqa: E402
from deployments.engines.peft_lora import read_peft_lora  # noqa: E402
from text2sql.pipeline.engine import AdapterInvalid  # noqa: E402

HIDDEN, KV, RANK = 8, 4, 2
# A two-block qwen2-shaped base: q and o are hidden→hidden, k and v hidden→kv (ggml's ne: in, out).
BASE_SHAPES = {
    f"blk.{block}.{name}.weight": shape
    for block in range(2)
    for name, shape in {
        "attn_q": (HIDDEN, HIDDEN),
        "attn_k": (HIDDEN, KV),
        "attn_v": (HIDDEN, KV),
        "attn_output": (HIDDEN, HIDDEN),
    }.items()
}
QWEN2 = GgufBase(architecture="qwen2", block_count=2, head_count=2, head_count_kv=1, tensor_shapes=BASE_SHAPES)


def write_adapter(directory: Path, modules: dict[str, tuple[int, int]], *, rank: int = RANK, **config) -> dict:
    """A peft-style adapter over `modules` (name -> (in, out)); returns its tensors by safetensors key."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(modules))
    tensors = {}
    for module, (fan_in, fan_out) in modules.items():
        tensors[f"base_model.model.{module}.lora_A.weight"] = rng.standard_normal((rank, fan_in)).astype(np.float32)
        tensors[f"base_model.model.{module}.lora_B.weight"] = rng.standard_normal((fan_out, rank)).astype(np.float32)
    save_file(tensors, str(directory / "adapter_model.safetensors"))
    settings = {"peft_type": "LORA", "r": rank, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"], **config}
    (directory / "adapter_config.json").write_text(json.dumps(settings))
    return tensors


def q_and_v(blocks: int = 2) -> dict[str, tuple[int, int]]:
    return {
        **{f"model.layers.{b}.self_attn.q_proj": (HIDDEN, HIDDEN) for b in range(blocks)},
        **{f"model.layers.{b}.self_attn.v_proj": (HIDDEN, KV) for b in range(blocks)},
    }


def read_back(path: Path) -> tuple[dict, dict]:
    reader = GGUFReader(path)
    fields = {name: field.contents() for name, field in reader.fields.items() if not name.startswith("GGUF.")}
    tensors = {t.name: t for t in reader.tensors}
    return fields, tensors


def test_a_peft_adapter_becomes_the_gguf_lora_llama_cpp_reads(tmp_path: Path) -> None:
    saved = write_adapter(tmp_path / "sql-lora", q_and_v())
    path = gguf_lora(read_peft_lora(tmp_path / "sql-lora"), QWEN2, base_name="base.gguf", cache_dir=tmp_path / "cache")
    fields, tensors = read_back(path)
    assert fields["general.architecture"] == "qwen2"
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == pytest.approx(16.0)
    assert sorted(tensors) == sorted(
        f"blk.{b}.{name}.weight.lora_{half}" for b in range(2) for name in ("attn_q", "attn_v") for half in "ab"
    )
    # ggml's ne order: a is [in, r], b is [r, out], the layout llama.cpp checks against the base weight [in, out].
    assert list(tensors["blk.1.attn_v.weight.lora_a"].shape) == [HIDDEN, RANK]
    assert list(tensors["blk.1.attn_v.weight.lora_b"].shape) == [RANK, KV]
    a = saved["base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"]
    b = saved["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"]
    np.testing.assert_array_equal(tensors["blk.1.attn_v.weight.lora_a"].data, a)
    np.testing.assert_array_equal(tensors["blk.1.attn_v.weight.lora_b"].data, b)


def test_rslora_keeps_peft_s_scale_in_llama_cpp_s_alpha_over_r(tmp_path: Path) -> None:
    write_adapter(tmp_path / "rs", q_and_v(), rank=4, use_rslora=True, lora_alpha=8)
    lora = read_peft_lora(tmp_path / "rs")
    fields, _ = read_back(gguf_lora(lora, QWEN2, base_name="base.gguf", cache_dir=tmp_path / "cache"))
    # peft: 8 / sqrt(4) = 4; llama.cpp: alpha / 4 must be 4 too.
    assert lora.scale == pytest.approx(4.0) and fields["adapter.lora.alpha"] / 4 == pytest.approx(4.0)


def test_the_conversion_is_cached_by_content(tmp_path: Path) -> None:
    write_adapter(tmp_path / "a", q_and_v())
    first = gguf_lora(read_peft_lora(tmp_path / "a"), QWEN2, base_name="base.gguf", cache_dir=tmp_path / "cache")
    written_at = first.stat().st_mtime_ns
    again = gguf_lora(read_peft_lora(tmp_path / "a"), QWEN2, base_name="base.gguf", cache_dir=tmp_path / "cache")
    assert again == first and again.stat().st_mtime_ns == written_at
    write_adapter(tmp_path / "a", q_and_v(blocks=1))  # new weights in the same directory: a new file
    changed = gguf_lora(read_peft_lora(tmp_path / "a"), QWEN2, base_name="base.gguf", cache_dir=tmp_path / "cache")
    assert changed != first and len(read_back(changed)[1]) == 4


def test_llama_q_and_k_rows_follow_the_gguf_rope_permutation(tmp_path: Path) -> None:
    llama = GgufBase(architecture="llama", block_count=2, head_count=2, head_count_kv=1, tensor_shapes=BASE_SHAPES)
    modules = {"model.layers.0.self_attn.q_proj": (HIDDEN, HIDDEN), "model.layers.0.self_attn.k_proj": (HIDDEN, KV),
               "model.layers.0.self_attn.v_proj": (HIDDEN, KV)}
    saved = write_adapter(tmp_path / "llama", modules)
    _, tensors = read_back(gguf_lora(read_peft_lora(tmp_path / "llama"), llama, base_name="l.gguf", cache_dir=tmp_path))
    b_q = saved["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]
    b_k = saved["base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight"]
    b_v = saved["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"]
    # Per head of 4 rows [x0, x1, y0, y1] (the two rope halves), GGUF stores [x0, y0, x1, y1].
    per_head = [0, 2, 1, 3]
    q_rows = per_head + [4 + i for i in per_head]
    np.testing.assert_array_equal(tensors["blk.0.attn_q.weight.lora_b"].data, b_q[q_rows])
    np.testing.assert_array_equal(tensors["blk.0.attn_k.weight.lora_b"].data, b_k[per_head])  # one kv head
    np.testing.assert_array_equal(tensors["blk.0.attn_v.weight.lora_b"].data, b_v)  # v is not rotated
    np.testing.assert_array_equal(permute_rows(np.arange(8), 2), np.array(q_rows))


def test_the_base_is_read_from_its_gguf(tmp_path: Path) -> None:
    writer = GGUFWriter(str(tmp_path / "base.gguf"), "qwen2")
    writer.add_block_count(2)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    for name, (fan_in, fan_out) in BASE_SHAPES.items():
        writer.add_tensor(name, np.zeros((fan_out, fan_in), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert GgufBase.read(tmp_path / "base.gguf") == QWEN2
    assert QWEN2.module_shape("model.layers.1.self_attn.k_proj") == (HIDDEN, KV)
    assert QWEN2.module_shape("model.layers.1.mlp.up_proj") is None  # no such tensor in this base


@pytest.mark.parametrize(
    ("modules", "config", "needle"),
    [
        ({"model.layers.0.self_attn.q_proj": (16, 16)}, {}, r"not made for base.gguf: .*q_proj is 16→16 in the adapter but 8→8"),
        ({"model.layers.5.self_attn.q_proj": (HIDDEN, HIDDEN)}, {}, "layers.5.self_attn.q_proj, which base.gguf has no"),
        ({"model.layers.0.mlp.gate_proj": (HIDDEN, 32)}, {}, "mlp.gate_proj, which base.gguf has no linear layer"),
        (q_and_v(), {"peft_type": "IA3"}, "IA3 adapter; only LoRA"),
        (q_and_v(), {"use_dora": True}, "DoRA"),
        (q_and_v(), {"modules_to_save": ["lm_head"]}, "modules_to_save"),
        (q_and_v(), {"alpha_pattern": {"q_proj": 4}}, "alpha_pattern"),
    ],
)
def test_adapters_for_another_model_or_method_are_refused(tmp_path: Path, modules, config, needle) -> None:
    write_adapter(tmp_path / "bad", modules, **config)
    with pytest.raises(AdapterInvalid, match=needle):
        gguf_lora(read_peft_lora(tmp_path / "bad"), QWEN2, base_name="base.gguf", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # nothing written for a refused adapter


def test_directories_that_are_not_adapters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AdapterInvalid, match="not a directory"):
        read_peft_lora(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterInvalid, match="lacks adapter_config.json and adapter_model.safetensors"):
        read_peft_lora(tmp_path / "empty")
    write_adapter(tmp_path / "broken", q_and_v())
    (tmp_path / "broken" / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterInvalid, match="not valid JSON"):
        read_peft_lora(tmp_path / "broken")
    write_adapter(tmp_path / "half", q_and_v())
    save_file({"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": np.zeros((RANK, HIDDEN), np.float32)},
              str(tmp_path / "half" / "adapter_model.safetensors"))
    with pytest.raises(AdapterInvalid, match="only one of the two LoRA matrices"):
        read_peft_lora(tmp_path / "half")


def test_other_architectures_are_refused_by_name(tmp_path: Path) -> None:
    write_adapter(tmp_path / "a", q_and_v())
    gemma = GgufBase(architecture="gemma2", block_count=2, head_count=2, head_count_kv=1, tensor_shapes=BASE_SHAPES)
    with pytest.raises(AdapterInvalid, match="base.gguf is 'gemma2'"):
        gguf_lora(read_peft_lora(tmp_path / "a"), gemma, base_name="base.gguf", cache_dir=tmp_path / "cache")
