"""The one interface every inference backend implements, and what the pipeline asks of it.

Engines take chat messages or a raw prompt plus sampling settings, and give back text and token counts.
They know nothing about SQL or HTTP. Each declares its capabilities, so callers ask the engine what it can
do, never which backend it is. A test can pass its own engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Literal

from pydantic import Field, PositiveInt, model_validator

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
    grammar: str | None = Field(default=None, description="GBNF grammar the output must follow (engines with grammar support).")


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


class EngineCapabilities(StrictModel):
    """What a loaded engine can do; the pipeline and the model server decide by these alone."""

    context_length: PositiveInt = Field(description="Prompt plus completion tokens the model can hold.")
    grammar: bool = Field(default=False, description="Accepts a GBNF grammar in SamplingParams.grammar.")
    adapters: bool = Field(default=False, description="Can load LoRA adapters and generate with them by name.")
    max_concurrent_requests: PositiveInt = Field(
        default=1, description="Generations it runs at once; more wait in the engine's own queue."
    )
    table_qa: bool = Field(
        default=False,
        description="Answers questions over a database's tables with a structured query (SPACE-T) instead of "
        "writing text: it implements text2sql.table_qa.TableQaEngine, and /v1/sql/generate takes that path.",
    )


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


class AdapterInvalid(EngineError):
    """An adapter directory this engine cannot use: files missing, not a LoRA, or made for another base model."""


class AdapterNotLoaded(EngineError):
    """A request or an unload named an adapter this engine has not loaded; the message lists the loaded ones."""


class Engine(ABC):
    @abstractmethod
    async def start(self) -> None:
        """Load weights. Called once, in the replica, before any request."""

    @property
    @abstractmethod
    def capabilities(self) -> EngineCapabilities:
        """What this engine can do; valid after start()."""

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

    async def unload_adapter(self, name: str) -> None:
        raise AdapterNotSupported(f"{type(self).__name__} cannot unload adapters (asked for {name!r})")
