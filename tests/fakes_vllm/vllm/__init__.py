"""The fake: AsyncEngineArgs, AsyncLLMEngine (the v1 AsyncLLM) and SamplingParams."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from vllm.sampling_params import SamplingParams

__all__ = ["AsyncEngineArgs", "AsyncLLMEngine", "SamplingParams", "started_engines"]

started_engines: list[AsyncLLMEngine] = []  # every engine from_engine_args made, newest last


class AsyncEngineArgs:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class FakeTokenizer:
    """One token per character; BOS is token 1 when the model has one."""

    def __init__(self, *, bos: bool) -> None:
        self.bos_token_id = 1 if bos else None

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        ids = [ord(c) for c in text]
        return [1, *ids] if add_special_tokens and self.bos_token_id is not None else ids

    def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False, **kwargs):
        text = "".join(f"<{m['role']}>{m['content']}" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None = None
    stop_reason: int | str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool


@dataclass
class ModelConfig:
    max_model_len: int


@dataclass
class GenerateCall:
    prompt: Any
    sampling_params: SamplingParams
    request_id: str
    lora_request: Any


@dataclass
class AsyncLLMEngine:
    args: AsyncEngineArgs
    model_config: ModelConfig
    tokenizer: FakeTokenizer
    replies: list[str] = field(default_factory=lambda: ["SELECT 1"])  # each request the next; the last repeats
    hang_after: int | None = None  # outputs before a request waits forever (cancellation tests)
    finish_reason: str | None = None  # forced instead of "stop"/"length" (e.g. "abort")
    calls: list[GenerateCall] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    loras: dict[int, Any] = field(default_factory=dict)
    healthy: bool = True

    @classmethod
    def from_engine_args(cls, args: AsyncEngineArgs) -> AsyncLLMEngine:
        model = args.kwargs["model"]
        engine = cls(
            args=args,
            model_config=ModelConfig(max_model_len=args.kwargs.get("max_model_len") or 4096),
            tokenizer=FakeTokenizer(bos="llama" in model),
        )
        started_engines.append(engine)
        return engine

    def get_tokenizer(self) -> FakeTokenizer:
        return self.tokenizer

    async def generate(self, prompt, sampling_params, request_id, *, lora_request=None):
        self.calls.append(GenerateCall(prompt, sampling_params, request_id, lora_request))
        reply = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        text, finish, stop_reason = _apply_limits(reply, sampling_params)
        prompt_ids = prompt["prompt_token_ids"]
        # One character a step, cumulative like vLLM's default output kind; an empty reply is one step.
        for i in range(1, len(text) + 1) if text else [0]:
            if self.hang_after is not None and i > self.hang_after:
                await asyncio.Event().wait()
            finished = i >= len(text)
            completion = CompletionOutput(
                0,
                text[:i],
                [ord(c) for c in text[:i]],
                (self.finish_reason or finish) if finished else None,
                stop_reason if finished else None,
            )
            yield RequestOutput(request_id, prompt_ids, [completion], finished)
            await asyncio.sleep(0)

    async def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)

    async def add_lora(self, lora_request) -> bool:
        self.loras[lora_request.lora_int_id] = lora_request
        return True

    async def remove_lora(self, lora_id: int) -> bool:
        return self.loras.pop(lora_id, None) is not None

    async def check_health(self) -> None:
        if not self.healthy:
            raise RuntimeError("EngineCore encountered an issue")


def _apply_limits(reply: str, sampling: SamplingParams) -> tuple[str, str, str | None]:
    text, finish, stop_reason = reply, "stop", None
    for stop in sampling.stop or ():
        cut = text.find(stop)
        if cut >= 0:
            text, stop_reason = text[:cut], stop
    if len(text) > sampling.max_tokens:
        return text[: sampling.max_tokens], "length", None
    return text, finish, stop_reason
