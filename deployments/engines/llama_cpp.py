"""llama.cpp engine (llama-cpp-python) for GGUF models on CPU.

One `Llama` instance is not safe to call from two threads at once (it aborts the process with a
GGML_ASSERT), so every generation holds `_generation_lock`. Generation runs in a worker thread so
the replica's event loop keeps answering health checks and accepting cancellations.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from deployments.engines.base import (
    Engine,
    EngineError,
    FinishReason,
    GenerationChunk,
    GenerationOutput,
    GenerationRequest,
    PromptTooLong,
)
from deployments.engines.llama_cpp_grammar import GrammarGuard

logger = logging.getLogger(__name__)

_END_OF_STREAM = object()


class LlamaCppEngine(Engine):
    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        use_mmap: bool = True,
        chat_format: str | None = None,
    ) -> None:
        self._model_path = model_path
        self._options: dict[str, Any] = {
            "n_ctx": n_ctx,
            "n_threads": n_threads or max(1, os.cpu_count() or 1),
            "n_batch": n_batch,
            "use_mmap": use_mmap,
            "chat_format": chat_format,
            "verbose": False,
        }
        self._llama: Any = None
        self._generation_lock = asyncio.Lock()

    @property
    def n_ctx(self) -> int:
        return self._options["n_ctx"]

    async def start(self) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise EngineError("backend llama_cpp needs llama-cpp-python: pip install 'text2sql-serve[llamacpp]'") from e
        logger.info("loading %s with %s", self._model_path, self._options)
        try:
            self._llama = await asyncio.to_thread(Llama, str(self._model_path), **self._options)
        except (ValueError, RuntimeError) as e:  # llama-cpp-python raises these for unreadable GGUFs
            raise EngineError(f"llama.cpp could not load {self._model_path.name}: {e}") from e

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    async def generate(self, request: GenerationRequest) -> GenerationOutput:
        async with self._generation_lock:
            result = await asyncio.to_thread(self._call, request, False)
        choice = result["choices"][0]
        text = choice["message"]["content"] if request.messages is not None else choice["text"]
        usage = result["usage"]
        return GenerationOutput(
            text=text or "",
            finish_reason=_finish_reason(choice.get("finish_reason")),
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop_requested = threading.Event()

        def produce() -> None:
            try:
                pieces: Iterator[dict[str, Any]] = self._call(request, True)
                for piece in pieces:
                    if stop_requested.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            except Exception as e:  # handed to the consumer, which raises it in the replica
                loop.call_soon_threadsafe(queue.put_nowait, e)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END_OF_STREAM)

        async with self._generation_lock:
            producer = loop.run_in_executor(None, produce)
            completion_tokens = 0
            try:
                while (piece := await queue.get()) is not _END_OF_STREAM:
                    if isinstance(piece, EngineError):
                        raise piece
                    if isinstance(piece, Exception):
                        raise EngineError(f"llama.cpp failed while streaming: {piece}") from piece
                    choice = piece["choices"][0]
                    text = _streamed_text(choice, chat=request.messages is not None)
                    if text:
                        completion_tokens += 1  # llama.cpp streams one token per piece
                    finish = choice.get("finish_reason")
                    if text or finish:
                        yield GenerationChunk(text=text, finish_reason=_finish_reason(finish) if finish else None)
                await producer
                yield GenerationChunk(
                    prompt_tokens=self._prompt_tokens_after(completion_tokens),
                    completion_tokens=completion_tokens,
                )
            finally:
                stop_requested.set()  # client went away or we are done: let the thread finish
                await producer

    async def check_health(self) -> None:
        if self._llama is None:
            raise EngineError("llama.cpp model is not loaded")

    def _call(self, request: GenerationRequest, stream: bool) -> Any:
        if self._llama is None:
            raise EngineError("llama.cpp model is not loaded")
        sampling = request.sampling
        common: dict[str, Any] = {
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "stop": sampling.stop or None,
            "seed": sampling.seed,
            "presence_penalty": sampling.presence_penalty,
            "frequency_penalty": sampling.frequency_penalty,
            "stream": stream,
        }
        guard = None
        if sampling.grammar is not None:
            from llama_cpp import LogitsProcessorList

            try:
                guard = GrammarGuard(self._llama, sampling.grammar)
            except ValueError as e:
                raise EngineError(str(e)) from e
            common["logits_processor"] = LogitsProcessorList([guard])
        try:
            if request.messages is not None:
                messages = [m.model_dump() for m in request.messages]
                return self._llama.create_chat_completion(messages=messages, **common)
            return self._llama.create_completion(prompt=self._prompt_tokens(request.prompt), **common)
        except ValueError as e:
            # llama-cpp-python checks the context window up front and raises ValueError.
            if "context window" in str(e):
                raise PromptTooLong(f"{e}; shorten the prompt or lower max_tokens") from e
            raise
        finally:
            if guard is not None and not stream:  # a stream's guard goes with its generator
                guard.close()

    def _prompt_tokens(self, prompt: str) -> list[int]:
        # Templates such as sqlcoder-llama3 spell out <|begin_of_text|>; adding the model's own BOS
        # as well would show the model two.
        tokens = self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        bos = self._llama.token_bos()
        if self._llama.metadata.get("tokenizer.ggml.add_bos_token", "true") != "false" and bos >= 0:
            if not tokens or tokens[0] != bos:
                tokens = [bos, *tokens]
        return tokens

    def _prompt_tokens_after(self, completion_tokens: int) -> int:
        # Streams report no usage; the context holds the rendered prompt plus what was evaluated since.
        return max(0, self._llama.n_tokens - completion_tokens + 1)


def _streamed_text(choice: dict[str, Any], *, chat: bool) -> str:
    if chat:
        return choice.get("delta", {}).get("content") or ""
    return choice.get("text") or ""


def _finish_reason(value: str | None) -> FinishReason:
    return "length" if value == "length" else "stop"
