"""llama.cpp engine (llama-cpp-python) for GGUF models on CPU.

One `Llama` instance is not safe to call from two threads at once (it aborts the process with a
GGML_ASSERT or crashes it), so every generation holds `_generation_lock`. Generation runs in a worker
thread so the replica's event loop keeps answering health checks and accepting cancellations.

A cancelled request cannot kill its thread, so the lock is held until the thread has really finished:
llama.cpp checks a stop flag after every generated token (reading the prompt runs to its end), and
cancellation and the time limit set it (`_exclusive_generation`, shared by the plain and the
streaming paths).

LoRA adapters: a peft adapter directory is checked and converted to a GGUF LoRA (`gguf_lora.py`, cached)
outside the lock, then loaded into the model under it; each request's adapter is applied in its generation's
thread (`llama_cpp_adapters.py`, which also resets the prompt cache on a switch).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployments.engines.gguf_lora import GgufBase, gguf_lora
from deployments.engines.llama_cpp_adapters import LlamaLoras
from deployments.engines.llama_cpp_grammar import GrammarGuard
from deployments.engines.peft_lora import read_peft_lora
from text2sql.pipeline.engine import (
    EmptyPrompt,
    Engine,
    EngineCapabilities,
    EngineError,
    FinishReason,
    GenerationChunk,
    GenerationOutput,
    GenerationRequest,
    GenerationTimeout,
    PromptTooLong,
)

if TYPE_CHECKING:
    from deployments.config import ModelConfig

logger = logging.getLogger(__name__)

_END_OF_STREAM = object()


def build(config: ModelConfig, model_path: Path) -> LlamaCppEngine:
    """The engine for a `backend: llama_cpp` model (the registry's entry point)."""
    settings = config.engine
    return LlamaCppEngine(
        model_path,
        n_ctx=settings.n_ctx,
        # Threads follow the CPUs Ray reserved for the replica, so replicas do not fight over cores.
        n_threads=settings.n_threads or max(1, int(config.ray_actor_options.num_cpus)),
        n_batch=settings.n_batch,
        use_mmap=settings.use_mmap,
        chat_format=settings.chat_format,
        n_gpu_layers=settings.n_gpu_layers,
        main_gpu=settings.main_gpu,
        tensor_split=settings.tensor_split,
        generation_timeout_s=config.generation_timeout_s,
        prompt_cache_mb=settings.prompt_cache_mb,
        prompt_store_mb=settings.prompt_store_mb,
    )


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
        n_gpu_layers: int = 0,
        main_gpu: int = 0,
        tensor_split: list[float] | None = None,
        generation_timeout_s: float | None = None,
        adapter_cache_dir: Path | None = None,
        prompt_cache_mb: int = 0,
        prompt_store_mb: int = 0,
        prompt_store_root: Path | None = None,
    ) -> None:
        """`prompt_store_mb` > 0 keeps new prompt prefixes on disk too, under `prompt_store_root` (default: the
        model cache's prefixes/ folder), for replicas that start later; it needs `prompt_cache_mb` > 0."""
        self._model_path = model_path
        self._prompt_cache_mb = prompt_cache_mb
        self._prompt_store_mb = prompt_store_mb
        self._prompt_store_root = prompt_store_root
        self._adapter_cache_dir = adapter_cache_dir  # None: the model cache's lora/ folder
        self._generation_timeout_s = generation_timeout_s
        threads = n_threads or max(1, os.cpu_count() or 1)
        self._options: dict[str, Any] = {
            "n_ctx": n_ctx,
            "n_threads": threads,
            # llama-cpp-python reads prompts on every core by default; beside other replicas on the
            # same cores its threads spin against theirs, and a prompt takes several times longer.
            "n_threads_batch": threads,
            "n_batch": n_batch,
            "use_mmap": use_mmap,
            "chat_format": chat_format,
            "n_gpu_layers": n_gpu_layers,
            "main_gpu": main_gpu,
            "tensor_split": tensor_split,
            "verbose": False,
        }
        self._llama: Any = None
        self._loras: LlamaLoras | None = None
        self._gguf_base: GgufBase | None = None
        self._generation_lock = asyncio.Lock()

    @property
    def capabilities(self) -> EngineCapabilities:
        # One Llama object, one generation at a time; a GBNF grammar is llama.cpp's own feature.
        return EngineCapabilities(context_length=self._options["n_ctx"], grammar=True, adapters=True)

    async def start(self) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise EngineError("backend llama_cpp needs llama-cpp-python: pip install 'text2sql-serve[llamacpp]'") from e
        logger.info("loading %s with %s", self._model_path, self._options)
        try:
            self._llama = await asyncio.to_thread(_stoppable(Llama), str(self._model_path), **self._options)
        except (ValueError, RuntimeError) as e:  # llama-cpp-python raises these for unreadable GGUFs
            raise EngineError(f"llama.cpp could not load {self._model_path.name}: {e}") from e
        if self._prompt_cache_mb > 0:
            from deployments.engines.llama_cpp_prefixes import PrefixCache

            self._llama.set_cache(PrefixCache(self._prompt_cache_mb << 20, store=self._prompt_store()))

    def _prompt_store(self) -> Any | None:
        if self._prompt_store_mb <= 0:
            return None
        from deployments.embedded_models import model_cache_dir
        from deployments.engines.llama_cpp_prefix_store import PrefixStore, store_directory

        root = self._prompt_store_root or model_cache_dir() / "prefixes"
        directory = store_directory(root, self._model_path, n_ctx=self._options["n_ctx"], n_batch=self._options["n_batch"])
        try:
            return PrefixStore(directory, self._prompt_store_mb << 20)
        except OSError as e:  # a read-only cache directory: serve without the disk tier
            logger.warning("prompt prefixes stay in RAM only: %s is not usable: %s", directory, e)
            return None

    @property
    def adapters(self) -> list[str]:
        return self._loras.names if self._loras is not None else []

    async def load_adapter(self, name: str, path: str) -> None:
        loras = self._lora_set()
        gguf_path = await asyncio.to_thread(self._convert_adapter, Path(path))
        async with self._exclusive_generation() as work:
            work.start(loras.load, name, gguf_path)
            await work.result()
        logger.info("loaded adapter %s from %s", name, gguf_path.name)

    async def unload_adapter(self, name: str) -> None:
        loras = self._lora_set()
        async with self._exclusive_generation() as work:
            work.start(loras.unload, name)
            await work.result()

    def _lora_set(self) -> LlamaLoras:
        """The adapters on the loaded model (none until the first is loaded)."""
        if self._llama is None:
            raise EngineError("llama.cpp model is not loaded")
        if self._loras is None:
            self._loras = LlamaLoras(self._llama)
        return self._loras

    def _convert_adapter(self, directory: Path) -> Path:
        """The adapter's GGUF LoRA file: checked against this model, converted once (outside the lock)."""
        lora = read_peft_lora(directory)
        if self._gguf_base is None:
            self._gguf_base = GgufBase.read(self._model_path)
        return gguf_lora(lora, self._gguf_base, base_name=self._model_path.name, cache_dir=self._adapter_cache_dir)

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    async def generate(self, request: GenerationRequest) -> GenerationOutput:
        async with self._exclusive_generation() as generation:
            generation.start(self._call, request, False, generation)
            result = await generation.result()
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

        def produce(generation: _Generation) -> None:
            try:
                pieces: Iterator[dict[str, Any]] = self._call(request, True, generation)
                for piece in pieces:
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            except Exception as e:  # handed to the consumer, which raises it in the replica
                loop.call_soon_threadsafe(queue.put_nowait, e)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END_OF_STREAM)

        async with self._exclusive_generation() as generation:
            generation.start(produce, generation)
            completion_tokens = 0
            while (piece := await queue.get()) is not _END_OF_STREAM and not generation.timed_out:
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
            await generation.result()  # raises when the time limit cut the stream short
            yield GenerationChunk(
                prompt_tokens=self._prompt_tokens_after(completion_tokens),
                completion_tokens=completion_tokens,
            )

    @asynccontextmanager
    async def _exclusive_generation(self) -> AsyncIterator[_Generation]:
        """Hold the lock from before a worker thread starts until it has finished, whatever happens to the request."""
        async with self._generation_lock:
            generation = _Generation(self._generation_timeout_s)
            try:
                yield generation
            finally:
                # Done, failed, cancelled or the client left: the next generation must not start while
                # this thread still runs on the same Llama, or the process crashes.
                await generation.stop_and_wait()

    async def check_health(self) -> None:
        if self._llama is None:
            raise EngineError("llama.cpp model is not loaded")

    def _call(self, request: GenerationRequest, stream: bool, generation: _Generation) -> Any:
        if self._llama is None:
            raise EngineError("llama.cpp model is not loaded")
        self._lora_set().activate(request.adapter)
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
        # Bound now, when each call builds its generator, and checked after every token.
        self._llama.stop_check = generation.should_stop
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
            self._llama.stop_check = None
            if guard is not None and not stream:  # a stream's guard goes with its generator
                guard.close()

    def _prompt_tokens(self, prompt: str) -> list[int]:
        # Templates such as sqlcoder-llama3 spell out <|begin_of_text|>; adding the model's own BOS
        # as well would show the model two.
        tokens = self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if not tokens:
            # llama.cpp would assert (n_tokens > 0) and take the process down.
            raise EmptyPrompt("the prompt is empty: it has no tokens to continue from")
        bos = self._llama.token_bos()
        if self._llama.metadata.get("tokenizer.ggml.add_bos_token", "true") != "false" and bos >= 0:
            if not tokens or tokens[0] != bos:
                tokens = [bos, *tokens]
        return tokens

    def _prompt_tokens_after(self, completion_tokens: int) -> int:
        # Streams report no usage; the context holds the rendered prompt plus what was evaluated since.
        return max(0, self._llama.n_tokens - completion_tokens + 1)


class _Generation:
    """One generation's worker thread and its stop flag, which llama.cpp checks after every token."""

    def __init__(self, timeout_s: float | None) -> None:
        self._timeout_s = timeout_s
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._stop = threading.Event()
        self._timed_out = False
        self._worker: asyncio.Future[Any] | None = None

    @property
    def timed_out(self) -> bool:
        return self._timed_out

    def should_stop(self, *_: Any) -> bool:
        """A llama-cpp-python stopping criterion; it is called with (input_ids, logits)."""
        if self._deadline is not None and not self._stop.is_set() and time.monotonic() >= self._deadline:
            self._timed_out = True
            self._stop.set()
        return self._stop.is_set()

    def start(self, work: Callable[..., Any], *args: Any) -> None:
        self._worker = asyncio.get_running_loop().run_in_executor(None, work, *args)

    async def result(self) -> Any:
        # Shielded: cancelling the future would mark it done while its thread runs on.
        result = await asyncio.shield(self._worker)
        if self.timed_out:
            raise GenerationTimeout(
                f"the generation took longer than the model's limit of {self._timeout_s:g} s "
                "(generation_timeout_s) and was stopped"
            )
        return result

    async def stop_and_wait(self) -> None:
        """Stop the thread and wait until it has finished, even if this task is cancelled meanwhile."""
        if self._worker is None:
            return
        self._stop.set()
        cancelled = False
        while not self._worker.done():
            try:
                await asyncio.wait([self._worker])
            except asyncio.CancelledError:
                cancelled = True
        if not self._worker.cancelled():
            self._worker.exception()  # retrieved here when the request is gone, so asyncio does not log it
        if cancelled:
            raise asyncio.CancelledError


@functools.cache
def _stoppable(llama_class: type) -> type:
    """`Llama` whose every completion also checks `stop_check` after each token.

    create_chat_completion takes no stopping_criteria, but its chat handlers all end in
    create_completion, so the check goes in there.
    """

    class StoppableLlama(llama_class):
        stop_check: Callable[..., bool] | None = None

        # The prompt cache (PrefixCache) keeps sequence states: KV cells only, not the full state and logits.
        def save_state(self) -> Any:
            from deployments.engines.llama_cpp_prefixes import save_sequence_state

            return save_sequence_state(self)

        def load_state(self, state: Any) -> None:
            from deployments.engines.llama_cpp_prefixes import load_sequence_state

            load_sequence_state(self, state)

        def create_completion(self, *args: Any, stopping_criteria: Any = None, **kwargs: Any) -> Any:
            if self.stop_check is not None:
                from llama_cpp import StoppingCriteriaList

                stopping_criteria = StoppingCriteriaList([*(stopping_criteria or []), self.stop_check])
            return super().create_completion(*args, stopping_criteria=stopping_criteria, **kwargs)

    return StoppableLlama


def _streamed_text(choice: dict[str, Any], *, chat: bool) -> str:
    if chat:
        return choice.get("delta", {}).get("content") or ""
    return choice.get("text") or ""


def _finish_reason(value: str | None) -> FinishReason:
    return "length" if value == "length" else "stop"
