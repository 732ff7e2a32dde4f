"""OpenAI chat and completion serving: protocol requests in, protocol responses (or chunks) out."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

from deployments.config import ModelConfig
from deployments.protocol.openai import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    DeltaMessage,
    UsageInfo,
)
from text2sql.pipeline.engine import Engine, GenerationRequest
from text2sql.pipeline.sampling import merge_sampling
from text2sql.prompts import ChatMessage


def chat_generation_request(
    config: ModelConfig, request: ChatCompletionRequest, *, adapter: str | None = None
) -> GenerationRequest:
    return GenerationRequest(
        messages=request.messages,
        sampling=_sampling(config, request, max_tokens=request.max_completion_tokens or request.max_tokens),
        adapter=adapter,
    )


def completion_generation_request(
    config: ModelConfig, request: CompletionRequest, *, adapter: str | None = None
) -> GenerationRequest:
    return GenerationRequest(
        prompt=request.prompt, sampling=_sampling(config, request, max_tokens=request.max_tokens), adapter=adapter
    )


def _sampling(config: ModelConfig, request: ChatCompletionRequest | CompletionRequest, *, max_tokens: int | None):
    return merge_sampling(
        config.generation,
        max_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        stop=request.stop_list(),
        seed=request.seed,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
    )


async def chat_completion(
    engine: Engine, config: ModelConfig, request: ChatCompletionRequest, *, adapter: str | None = None
) -> ChatCompletionResponse:
    output = await engine.generate(chat_generation_request(config, request, adapter=adapter))
    return ChatCompletionResponse(
        model=config.name,
        choices=[
            ChatChoice(message=ChatMessage(role="assistant", content=output.text), finish_reason=output.finish_reason)
        ],
        usage=_usage(output.prompt_tokens, output.completion_tokens),
    )


async def completion(
    engine: Engine, config: ModelConfig, request: CompletionRequest, *, adapter: str | None = None
) -> CompletionResponse:
    output = await engine.generate(completion_generation_request(config, request, adapter=adapter))
    return CompletionResponse(
        model=config.name,
        choices=[CompletionChoice(text=output.text, finish_reason=output.finish_reason)],
        usage=_usage(output.prompt_tokens, output.completion_tokens),
    )


async def chat_completion_stream(
    engine: Engine, config: ModelConfig, request: ChatCompletionRequest, *, adapter: str | None = None
) -> AsyncIterator[ChatCompletionChunk | UsageInfo]:
    """The client's chunks, then a bare `UsageInfo` for the ingress's token metrics, never sent to the client."""
    chunk_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

    def chunk(delta: DeltaMessage, finish_reason: str | None = None, usage: UsageInfo | None = None):
        choices = [] if usage else [ChatChunkChoice(delta=delta, finish_reason=finish_reason)]
        return ChatCompletionChunk(id=chunk_id, created=created, model=config.name, choices=choices, usage=usage)

    yield chunk(DeltaMessage(role="assistant", content=""))
    async for piece in engine.stream(chat_generation_request(config, request, adapter=adapter)):
        if piece.prompt_tokens is not None:
            usage = _usage(piece.prompt_tokens, piece.completion_tokens or 0)
            if request.stream_options and request.stream_options.include_usage:
                yield chunk(DeltaMessage(), usage=usage)
            yield usage
        elif piece.text or piece.finish_reason:
            yield chunk(DeltaMessage(content=piece.text or None), finish_reason=piece.finish_reason)


async def completion_stream(
    engine: Engine, config: ModelConfig, request: CompletionRequest, *, adapter: str | None = None
) -> AsyncIterator[CompletionResponse | UsageInfo]:
    """The client's chunks, then a bare `UsageInfo` for the ingress's token metrics, never sent to the client."""
    chunk_id, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    async for piece in engine.stream(completion_generation_request(config, request, adapter=adapter)):
        if piece.prompt_tokens is not None:
            usage = _usage(piece.prompt_tokens, piece.completion_tokens or 0)
            if request.stream_options and request.stream_options.include_usage:
                yield CompletionResponse(id=chunk_id, created=created, model=config.name, choices=[], usage=usage)
            yield usage
        elif piece.text or piece.finish_reason:
            choice = CompletionChoice(text=piece.text, finish_reason=piece.finish_reason)
            yield CompletionResponse(id=chunk_id, created=created, model=config.name, choices=[choice])


def _usage(prompt_tokens: int, completion_tokens: int) -> UsageInfo:
    return UsageInfo(
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens
    )
