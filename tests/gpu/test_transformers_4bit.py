"""The Transformers engine's 4-bit path: the embedded 0.5B GGUF, converted to a plain checkpoint, then quantized to
NF4 by bitsandbytes while loading onto a CUDA GPU. Skips cleanly without a GPU or the `[transformers]` extra.

    pytest -m gpu tests/gpu/test_transformers_4bit.py
"""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU", allow_module_level=True)
bitsandbytes = pytest.importorskip("bitsandbytes")

from deployments.engines.settings import TransformersSettings  # noqa: E402
from deployments.engines.transformers import TransformersEngine  # noqa: E402
from text2sql.pipeline.engine import GenerationRequest, SamplingParams  # noqa: E402
from text2sql.prompts import ChatMessage  # noqa: E402


def test_4bit_model_on_the_gpu_writes_sql(embedded_model_path) -> None:
    settings = TransformersSettings(load_in_4bit=True, torch_dtype="fp16", device_map="cuda:0")
    engine = TransformersEngine(embedded_model_path, settings)
    asyncio.run(engine.start())
    model = engine._model
    assert model.device.type == "cuda"
    four_bit = [m for m in model.modules() if isinstance(m, bitsandbytes.nn.Linear4bit)]
    assert len(four_bit) >= 24 * 7  # every attention and MLP projection of the 24 layers
    question = [ChatMessage(role="user", content="Write one SQLite query that counts the rows of table users.")]
    output = asyncio.run(engine.generate(GenerationRequest(messages=question, sampling=SamplingParams(max_tokens=24))))
    assert "select" in output.text.lower() and "users" in output.text.lower()
