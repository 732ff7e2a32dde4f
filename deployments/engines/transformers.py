"""Transformers engine (`backend: transformers`): Hugging Face models, or GGUF files dequantized once, on PyTorch.

Inside a Serve replica, concurrent requests are batched with `serve.batch` (`max_batch_size`,
`batch_wait_timeout_s`): one left-padded `generate()` call runs them together in a worker thread, so the
replica's event loop keeps answering health checks. `transformers_rows.py` says how a batch is split by
sampling settings and how each row streams and stops. Outside a replica (tests, benchmarks, training) each
request is a batch of one, since `serve.batch` needs a replica.

One model is not driven by two threads at once: a batch holds `_model_lock` until its thread has finished.
A cancelled request cannot kill that thread, so it sets its row's stop flag, which the row reads after every
token, and waits until the thread has left its row (as the llama.cpp engine does); the other rows go on.
`generation_timeout_s` sets the same flag and ends in `GenerationTimeout`.

LoRA adapters go through peft (`transformers_adapters.py`); loading and unloading hold the model lock too.
Rows are grouped by adapter as well as by sampling, so one generate() call runs with one adapter active.

torch and transformers are imported in `start()`, so this module imports where only llama.cpp is installed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import serve
from ray.serve.exceptions import RayServeException

from deployments.engines.settings import TransformersSettings
from deployments.engines.transformers_adapters import PeftAdapters
from deployments.engines.transformers_rows import (
    Row,
    generation_options,
    group_rows,
    left_pad,
    penalties_processor,
    watch_rows,
)
from text2sql.pipeline.engine import (
    EmptyPrompt,
    Engine,
    EngineCapabilities,
    EngineError,
    GenerationChunk,
    GenerationOutput,
    GenerationRequest,
    GenerationTimeout,
    PromptTooLong,
)

if TYPE_CHECKING:
    from deployments.config import ModelConfig

logger = logging.getLogger(__name__)

# End-of-generation special tokens by name, as llama.cpp marks them: a raw completion may end in any of them.
_END_TOKEN_NAMES = ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<|end|>", "</s>")
_FALLBACK_CONTEXT_LENGTH = 2048


def build(config: ModelConfig, model_path: Path) -> TransformersEngine:
    """The engine for a `backend: transformers` model (the registry's entry point)."""
    settings = config.engine
    if config.max_ongoing_requests < settings.max_batch_size:
        logger.warning(
            "model %s: max_ongoing_requests (%d) is below engine.max_batch_size (%d), so batches never fill; "
            "raise max_ongoing_requests",
            config.name, config.max_ongoing_requests, settings.max_batch_size,
        )
    return TransformersEngine(
        model_path,
        settings,
        # Threads follow the CPUs Ray reserved for the replica, so replicas do not fight over cores.
        num_threads=settings.num_threads or max(1, int(config.ray_actor_options.num_cpus)),
        generation_timeout_s=config.generation_timeout_s,
    )


class TransformersEngine(Engine):
    def __init__(
        self,
        model_path: Path,
        settings: TransformersSettings | None = None,
        *,
        num_threads: int | None = None,
        generation_timeout_s: float | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self._model_path = model_path
        self._settings = settings or TransformersSettings()
        self._num_threads = num_threads or self._settings.num_threads
        self._generation_timeout_s = generation_timeout_s
        self._cache_dir = cache_dir
        self._model: Any = None
        self._tokenizer: Any = None
        self._model_context: int | None = None
        self._end_ids: frozenset[int] = frozenset()
        self._pad_id = 0
        self._bos_id: int | None = None
        self._model_lock = asyncio.Lock()
        self._adapters = PeftAdapters()
        self._submit: Callable[[Row], Awaitable[Any]] = self._run_alone
        # Rows per batch, the latest last: batching made visible to tests and benchmarks.
        self.batch_sizes: deque[int] = deque(maxlen=1000)

    @property
    def capabilities(self) -> EngineCapabilities:
        context_length = self._settings.context_length or self._model_context
        if context_length is None:
            raise EngineError("the transformers model is not loaded; its context length is known after start()")
        return EngineCapabilities(
            context_length=context_length,
            grammar=False,
            adapters=True,
            max_concurrent_requests=self._settings.max_batch_size,
        )

    async def start(self) -> None:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError as e:
            raise EngineError(
                "backend transformers needs torch and transformers: pip install 'text2sql-serve[transformers]'"
            ) from e
        from deployments.engines.transformers_loading import load_model

        self._model, self._tokenizer = await asyncio.to_thread(
            load_model, self._model_path, self._settings, cache_dir=self._cache_dir
        )
        self._configure_tokens()
        if _in_serve_replica():
            self._submit = serve.batch(
                max_batch_size=self._settings.max_batch_size, batch_wait_timeout_s=self._settings.batch_wait_timeout_s
            )(self._run_batch)

    async def generate(self, request: GenerationRequest) -> GenerationOutput:
        row = self._row(request)
        await self._run(row)
        return row.output()

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        row = self._row(request)
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        row.on_text = lambda text: loop.call_soon_threadsafe(pieces.put_nowait, text)
        run = asyncio.ensure_future(self._run(row))
        # Queued after every piece the thread sent, since the thread ends before the run does.
        run.add_done_callback(lambda _: pieces.put_nowait(None))
        try:
            while (piece := await pieces.get()) is not None:
                yield GenerationChunk(text=piece)
            await run
        finally:
            if not run.done():  # the client left: stop this row, and wait until the thread has let it go
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
        output = row.output()
        yield GenerationChunk(finish_reason=output.finish_reason)
        yield GenerationChunk(prompt_tokens=output.prompt_tokens, completion_tokens=output.completion_tokens)

    async def check_health(self) -> None:
        if self._model is None:
            raise EngineError("transformers model is not loaded")

    @property
    def adapters(self) -> list[str]:
        return self._adapters.names

    async def load_adapter(self, name: str, path: str) -> None:
        def load() -> None:
            self._model = self._adapters.load(self._model, name, Path(path), base=self._model_path.name)

        await self._change_model(load)
        logger.info("loaded adapter %s from %s", name, path)

    async def unload_adapter(self, name: str) -> None:
        def unload() -> None:
            self._model = self._adapters.unload(self._model, name)

        await self._change_model(unload)

    async def _change_model(self, change: Callable[[], None]) -> None:
        """Run `change` in a worker thread while no batch generates; a cancelled caller still waits for it."""
        if self._model is None:
            raise EngineError("transformers model is not loaded")
        async with self._model_lock:
            await _wait_through_cancellation(asyncio.get_running_loop().run_in_executor(None, change))

    def _configure_tokens(self) -> None:
        from transformers import GenerationConfig

        model, tokenizer = self._model, self._tokenizer
        text_config = model.config.get_text_config(decoder=True)
        self._model_context = getattr(text_config, "max_position_embeddings", None) or _FALLBACK_CONTEXT_LENGTH
        configured = model.generation_config.eos_token_id
        end_ids = set(configured if isinstance(configured, list) else [configured])
        end_ids.add(tokenizer.eos_token_id)
        special = {token.content: token_id for token_id, token in tokenizer.added_tokens_decoder.items() if token.special}
        end_ids.update(special[name] for name in _END_TOKEN_NAMES if name in special)
        self._end_ids = frozenset(i for i in end_ids if i is not None)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else model.generation_config.pad_token_id
        self._pad_id = pad if pad is not None else min(self._end_ids)
        bos = tokenizer.bos_token_id
        # Prepended to raw prompts only when the tokenizer itself would add it (llama, not Qwen).
        self._bos_id = bos if bos is not None and tokenizer("a")["input_ids"][:1] == [bos] else None
        # Only the token ids: the checkpoint's own sampling defaults must not override a request's settings.
        model.generation_config = GenerationConfig(
            bos_token_id=bos, eos_token_id=sorted(self._end_ids), pad_token_id=self._pad_id
        )

    def _row(self, request: GenerationRequest) -> Row:
        if self._model is None:
            raise EngineError("transformers model is not loaded")
        self._adapters.require(request.adapter)
        if request.sampling.grammar is not None:
            raise EngineError("backend transformers has no grammar support; its capabilities say grammar=False")
        ids = self._prompt_ids(request)
        context_length = self.capabilities.context_length
        if len(ids) + request.sampling.max_tokens > context_length:
            raise PromptTooLong(
                f"the prompt ({len(ids)} tokens) and max_tokens ({request.sampling.max_tokens}) exceed the context "
                f"window of {context_length} tokens; shorten the prompt or lower max_tokens"
            )
        return Row(prompt_ids=ids, sampling=request.sampling, adapter=request.adapter)

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        tokenizer = self._tokenizer
        if request.messages is not None:
            if not tokenizer.chat_template:
                raise EngineError("this model's tokenizer has no chat template; use a raw-prompt template")
            messages = [m.model_dump() for m in request.messages]
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = request.prompt or ""
        # Templates such as sqlcoder-llama3 spell out their BOS; the tokenizer adding one would show the model two.
        ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise EmptyPrompt("the prompt is empty: it has no tokens to continue from")
        if request.prompt is not None and self._bos_id is not None and ids[0] != self._bos_id:
            ids = [self._bos_id, *ids]
        return ids

    async def _run(self, row: Row) -> None:
        try:
            await self._submit(row)
        except asyncio.CancelledError:
            row.request_stop()
            if row.started:
                await _wait_through_cancellation(row.finished.wait())
            raise
        if isinstance(row.error, EngineError):  # e.g. its adapter was unloaded while it waited
            raise row.error
        if row.error is not None:
            raise EngineError(f"transformers failed while generating: {row.error}") from row.error
        if row.timed_out:
            raise GenerationTimeout(
                f"the generation took longer than the model's limit of {self._generation_timeout_s:g} s "
                "(generation_timeout_s) and was stopped"
            )

    async def _run_alone(self, row: Row) -> list[Row]:
        # Shielded, as serve.batch's own handler is: a cancelled caller stops its row, not the batch.
        return await asyncio.shield(asyncio.ensure_future(self._run_batch([row])))

    async def _run_batch(self, rows: list[Row]) -> list[Row]:
        """serve.batch's handler: one batch, in a worker thread, holding the model until the thread ends."""
        for row in rows:
            row.started = True
        self.batch_sizes.append(len(rows))
        try:
            async with self._model_lock:
                for row in rows:
                    row.start_clock(self._generation_timeout_s)
                worker = asyncio.get_running_loop().run_in_executor(None, self._generate_rows, rows)
                await _wait_through_cancellation(worker, on_cancel=lambda: [row.request_stop() for row in rows])
        finally:
            for row in rows:
                row.finished.set()
        return rows

    def _generate_rows(self, rows: list[Row]) -> None:
        """In the worker thread: each group of compatible rows is one generate() call."""
        import torch

        if self._num_threads:
            torch.set_num_threads(self._num_threads)
        for group in group_rows([row for row in rows if not row.should_stop()]):
            try:
                self._generate_group(group)
            except Exception as e:  # reported to each row's caller; the other groups still run
                logger.exception("transformers generate() failed for %d rows", len(group))
                for row in group:
                    row.fail(e)
        for row in rows:
            if row.finish_reason is None and row.error is None:
                row.close()

    def _generate_group(self, rows: list[Row]) -> None:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        ids, mask = left_pad([row.prompt_ids for row in rows], self._pad_id)
        device = self._model.device
        input_ids = torch.tensor(ids, dtype=torch.long, device=device)
        attention_mask = torch.tensor(mask, dtype=torch.long, device=device)
        options = generation_options(rows)
        if rows[0].sampling.seed is not None and options["do_sample"]:
            torch.manual_seed(rows[0].sampling.seed)
        config = GenerationConfig(
            **options,
            bos_token_id=self._model.generation_config.bos_token_id,
            eos_token_id=sorted(self._end_ids),
            pad_token_id=self._pad_id,
        )
        decode = self._decode
        processors = [p for p in [penalties_processor(rows, prompt_width=input_ids.shape[1])] if p is not None]
        with self._adapters.active(self._model, rows[0].adapter), torch.inference_mode():
            self._model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=config,
                stopping_criteria=StoppingCriteriaList([watch_rows(rows, end_ids=self._end_ids, decode=decode)]),
                logits_processor=LogitsProcessorList(processors),
            )
        for row in rows:
            row.close()

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=True)


async def _wait_through_cancellation(awaitable: Awaitable[Any], *, on_cancel: Callable[[], Any] | None = None) -> Any:
    """Await to the end even if this task is cancelled meanwhile (then re-raise): a thread must not be left behind."""
    future = asyncio.ensure_future(awaitable)
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            cancelled = True
            if on_cancel is not None:
                on_cancel()
    if cancelled:
        raise asyncio.CancelledError
    return future.result()


def _in_serve_replica() -> bool:
    try:
        serve.get_replica_context()
    except RayServeException:
        return False
    return True
