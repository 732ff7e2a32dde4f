"""OpenAI-compatible request and response bodies (`/v1/chat/completions`, `/v1/completions`, `/v1/models`).

Requests are strict: an unknown or unsupported parameter is a 422 that names it, rather than being
silently ignored.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import Field, field_validator

from text2sql.prompts import ChatMessage
from text2sql.strict import StrictModel


class StreamOptions(StrictModel):
    include_usage: bool = Field(default=False, description="Send a final chunk with token usage.")


class _SamplingFields(StrictModel):
    model: str | None = Field(default=None, description="Served model name; the default model when absent.")
    max_tokens: int | None = Field(default=None, gt=0, description="Cap on generated tokens.")
    temperature: float | None = Field(default=None, ge=0, le=2, description="Sampling temperature.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling mass.")
    stop: str | list[str] | None = Field(default=None, description="Stop string(s).")
    seed: int | None = Field(default=None, description="Sampling seed.")
    presence_penalty: float = Field(default=0.0, ge=-2, le=2, description="Presence penalty.")
    frequency_penalty: float = Field(default=0.0, ge=-2, le=2, description="Frequency penalty.")
    n: Literal[1] = Field(default=1, description="Choices per request; only 1 is supported.")
    stream: bool = Field(default=False, description="Stream server-sent events.")
    stream_options: StreamOptions | None = Field(default=None, description="Streaming options.")
    user: str | None = Field(default=None, description="End-user id, for logs only.")

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation so far.")
    max_completion_tokens: int | None = Field(default=None, gt=0, description="Newer name for max_tokens.")


class CompletionRequest(_SamplingFields):
    prompt: str = Field(description="The text to continue.")
    echo: Literal[False] = Field(default=False, description="Echoing the prompt is not supported.")

    @field_validator("prompt", mode="before")
    @classmethod
    def _single_prompt(cls, value: object) -> object:
        if isinstance(value, list):
            if len(value) == 1 and isinstance(value[0], str):
                return value[0]
            raise ValueError("prompt must be a single string; batches of prompts are not supported")
        return value


class UsageInfo(StrictModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


class ChatChoice(StrictModel):
    index: int = 0
    message: ChatMessage
    finish_reason: str | None


class ChatCompletionResponse(StrictModel):
    id: str = Field(default_factory=lambda: _new_id("chatcmpl"))
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo


class DeltaMessage(StrictModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(StrictModel):
    index: int = 0
    delta: DeltaMessage
    finish_reason: str | None = None


class ChatCompletionChunk(StrictModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: UsageInfo | None = None


class CompletionChoice(StrictModel):
    index: int = 0
    text: str
    finish_reason: str | None = None
    logprobs: None = None


class CompletionResponse(StrictModel):
    id: str = Field(default_factory=lambda: _new_id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo | None = None


class ModelCard(StrictModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "text2sql-serve"
    parent: str | None = Field(default=None, description="For an adapter: the served model it adapts.")
    adapter: str | None = Field(default=None, description="For an adapter: its own name, also accepted as `model`.")
    prompt_template: str | None = Field(default=None, description="The prompt template requests are rendered with.")
    backend: str | None = Field(default=None, description="For a base model: its inference engine.")


class ModelList(StrictModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
