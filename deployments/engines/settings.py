"""Engine settings, one strict model per backend, discriminated by `backend`.

A model's config names its backend once (`backend: llama_cpp` beside `engine:`, or inside it); the union picks
the settings model, and `registry.py` the engine class. Nothing else asks which backend a model uses.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, PositiveInt

from text2sql.strict import StrictModel


class LlamaCppSettings(StrictModel):
    backend: Literal["llama_cpp"] = Field(default="llama_cpp", description="llama.cpp (llama-cpp-python), GGUF files.")
    n_ctx: PositiveInt = Field(default=4096, description="Context window in tokens.")
    n_threads: PositiveInt | None = Field(default=None, description="CPU threads; None uses num_cpus.")
    n_batch: PositiveInt = Field(default=512, description="Prompt-processing batch size.")
    use_mmap: bool = Field(default=True, description="Memory-map the GGUF instead of reading it in.")
    chat_format: str | None = Field(
        default=None, description="llama-cpp-python chat format; None uses the template inside the GGUF."
    )


# One member today; each backend adds its settings model here and its engine class to the registry.
EngineSettings = Annotated[Union[LlamaCppSettings], Field(discriminator="backend")]  # noqa: UP007
BACKENDS: tuple[str, ...] = ("llama_cpp",)
