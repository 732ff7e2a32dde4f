"""The one interface every inference backend implements (llama.cpp now; Transformers, vLLM, SPACE-T later).

Engines take chat messages or a raw prompt plus sampling settings, and give back text and token
counts. They know nothing about SQL or HTTP. A test can hand a model server its own engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Literal

from pydantic import Field, model_validator

from text2sql.prompts import ChatMessage
from text2sql.strict import StrictModel

FinishReason = Literal["stop", "length"]


class SamplingParams(StrictModel):
    max_tokens: int = Field(gt=0, description="Cap on generated tokens.")
    temperature: float = Field(default=0.0, ge=0.0, description="0 is greedy.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    stop: list[str] = Field(default_factory=list, description="Stop strings.")
    seed: int | None = Field(default=None, description="Sampling seed.")
    presence_penalty: float = Field(default=0.0, description="OpenAI presence penalty.")
    frequency_penalty: float = Field(default=0.0, description="OpenAI frequency penalty.")
    grammar: str | None = Field(default=None, description="GBNF grammar the output must follow (llama_cpp).")


class GenerationRequest(StrictModel):
    messages: list[ChatMessage] | None = Field(default=None, description="Chat form; the model's template applies.")
    prompt: str | None = Field(default=None, description="Raw completion form.")
    sampling: SamplingParams = Field(description="How to sample.")
    adapter: str | None = Field(default=None, description="LoRA adapter name; None is the base model.")

    @model_validator(mode="after")
    def _exactly_one_input(self) -> GenerationRequest:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a generation request has exactly one of 'messages' or 'prompt'")
        return self


class GenerationOutput(StrictModel):
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


class GenerationChunk(StrictModel):
    """One streamed piece. The last chunk has a finish_reason and the token counts."""

    text: str = ""
    finish_reason: FinishReason | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class EngineError(RuntimeError):
    """The backend failed. Its message is logged; the client sees a sanitised one."""


class PromptTooLong(EngineError):
    """The prompt and max_tokens do not fit the model's context window: the client's to fix (400)."""


class EmptyPrompt(EngineError):
    """The prompt tokenizes to nothing, so there is nothing to generate from: the client's to fix (400)."""


class GenerationTimeout(EngineError):
    """The generation ran past the model's time limit and was stopped (504)."""


class AdapterNotSupported(EngineError):
    """This backend cannot load LoRA adapters."""


class Engine(ABC):
    @abstractmethod
    async def start(self) -> None:
        """Load weights. Called once, in the replica, before any request."""

    @abstractmethod
    async def generate(self, request: GenerationRequest) -> GenerationOutput:
        """Generate to the end; a cancelled call stops the generation before it returns."""

    @abstractmethod
    def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        """Yield text pieces as they are generated; closing the iterator stops generation."""

    @abstractmethod
    async def check_health(self) -> None:
        """Raise if the engine cannot serve."""

    async def load_adapter(self, name: str, path: str) -> None:
        raise AdapterNotSupported(f"{type(self).__name__} cannot load adapters (asked for {name!r})")
