"""vLLM engine (GPU only): vLLM's async engine, many requests batched on one replica.

Written against vLLM 0.27 to 0.33 (`vllm.AsyncLLMEngine` is the v1 `AsyncLLM` there): AsyncEngineArgs,
`generate(prompt, sampling_params, request_id, lora_request=...)`, `abort`, `add_lora` / `remove_lora`,
`LoRARequest(name, id, path)` and `SamplingParams.structured_outputs`. vllm is imported in `start()`
only, so this module imports where vllm is not installed (CI, CPU replicas).

Prompts are tokenized here, not by vLLM: chat messages through the model's chat template, raw prompts
without a second BOS when a template already spells one. So the prompt length is known before vLLM
sees it, and an empty or too long prompt is the client's error, as on llama.cpp.

A grammar goes to vLLM as a structured-output constraint (xgrammar), and every constrained output is
checked against it afterwards (`gbnf.py`): vLLM versions that do not know a constraint field drop it
without an error, and an unconstrained reply must not pass as a constrained one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployments.engines.gbnf import parsed_grammar
from deployments.engines.settings import VllmSettings
from text2sql.pipeline.engine import (
    AdapterNotSupported,
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
    SamplingParams,
)

if TYPE_CHECKING:
    from deployments.config import ModelConfig

logger = logging.getLogger(__name__)

MISSING_EXTRA = "backend vllm needs vLLM on a CUDA machine: pip install 'text2sql-serve[vllm]'"
# xgrammar reads every hex digit after \x ("\x5Fa" is U+05FA), llama.cpp exactly two; \u00HH means the
# same to both. An escaped backslash is matched first, so "\\x41" stays a backslash and "x41".
_HEX_ESCAPE = re.compile(r"\\\\|\\x([0-9A-Fa-f]{2})")


def build(config: ModelConfig, model_path: Path) -> VllmEngine:
    """The engine for a `backend: vllm` model (the registry's entry point)."""
    return VllmEngine(
        model_path, config.engine, served_name=config.name, generation_timeout_s=config.generation_timeout_s
    )


def engine_arguments(settings: VllmSettings, model_path: Path, *, served_name: str) -> dict[str, Any]:
    """AsyncEngineArgs for a model, as keywords (a pure function of the settings)."""
    return {
        "model": str(model_path),
        "served_model_name": served_name,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "max_model_len": settings.max_model_len,
        "dtype": settings.dtype,
        "enable_lora": settings.enable_lora,
        "max_loras": settings.max_loras,
        "max_lora_rank": settings.max_lora_rank,
        "enable_prefix_caching": settings.enable_prefix_caching,
        "max_num_seqs": settings.max_num_seqs,
    }


def sampling_arguments(sampling: SamplingParams, *, max_tokens: int) -> dict[str, Any]:
    """vllm.SamplingParams for a request, as keywords, without the grammar (see `portable_grammar`)."""
    return {
        "max_tokens": max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "stop": list(sampling.stop) or None,
        "seed": sampling.seed,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
    }


def portable_grammar(grammar: str) -> str:
    """The GBNF grammar with `\\xHH` escapes written as `\\u00HH`, which xgrammar reads as llama.cpp does."""
    return _HEX_ESCAPE.sub(lambda m: m[0] if m[1] is None else "\\u00" + m[1], grammar)


def check_constrained_output(grammar: str, text: str, *, ended_by_model: bool) -> None:
    """Raise unless `text` could have come out of decoding under `grammar`.

    The model may only end where the grammar is complete; a length limit or a stop string cuts it
    anywhere, so then a prefix of a sentence is all that can be asked for.
    """
    recognition = parsed_grammar(grammar).recognize(text)
    if recognition.complete if ended_by_model else recognition.viable_prefix:
        return
    raise EngineError(
        "vLLM returned text outside the requested grammar, so its structured-output constraint was not "
        f"applied; refusing the reply (first 80 characters: {text[:80]!r})"
    )


@dataclass(frozen=True)
class _Prepared:
    """One request in vLLM's terms."""

    prompt: dict[str, Any]
    sampling: Any  # vllm.SamplingParams
    lora: Any  # vllm LoRARequest or None
    grammar: str | None  # as sent to vLLM, checked against afterwards

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt["prompt_token_ids"])


class VllmEngine(Engine):
    def __init__(
        self,
        model_path: Path,
        settings: VllmSettings,
        *,
        served_name: str,
        generation_timeout_s: float | None = None,
    ) -> None:
        self._model_path = model_path
        self._settings = settings
        self._engine_arguments = engine_arguments(settings, model_path, served_name=served_name)
        self._generation_timeout_s = generation_timeout_s
        self._engine: Any = None
        self._tokenizer: Any = None
        self._bos: int | None = None
        self._context_length: int | None = None
        self._adapters: dict[str, Any] = {}  # name -> LoRARequest
        self._next_adapter_id = 1  # vLLM's LoRA ids start at 1

    @property
    def capabilities(self) -> EngineCapabilities:
        context_length = self._context_length or self._settings.max_model_len
        if context_length is None:
            raise EngineError("the vLLM engine has not started: its context length is not known yet")
        return EngineCapabilities(
            context_length=context_length,
            grammar=True,
            adapters=self._settings.enable_lora,
            max_concurrent_requests=self._settings.max_num_seqs,
        )

    async def start(self) -> None:
        vllm = _import_vllm()
        from vllm.config import StructuredOutputsConfig

        # xgrammar, not "auto": auto may fall back to a backend that reads a different grammar syntax.
        arguments = vllm.AsyncEngineArgs(
            **self._engine_arguments, structured_outputs_config=StructuredOutputsConfig(backend="xgrammar")
        )
        logger.info("starting vLLM on %s with %s", self._model_path, self._engine_arguments)
        try:
            self._engine = vllm.AsyncLLMEngine.from_engine_args(arguments)
            self._tokenizer = self._engine.get_tokenizer()
        except Exception as e:  # vLLM raises many types for a model or GPU it cannot use
            raise EngineError(f"vLLM could not start {self._model_path.name}: {type(e).__name__}: {e}") from e
        # vLLM may lower max_model_len to what fits in the KV cache; it writes the result back here.
        self._context_length = self._engine.model_config.max_model_len
        self._bos = _bos_to_prepend(self._tokenizer)

    async def generate(self, request: GenerationRequest) -> GenerationOutput:
        prepared = self._prepare(request)
        try:
            final = await asyncio.wait_for(self._last_output(prepared), self._generation_timeout_s)
        except asyncio.TimeoutError:
            raise self._timeout() from None
        completion = final.outputs[0]
        finish_reason = _finish_reason(completion.finish_reason)
        await self._check(prepared, completion)
        return GenerationOutput(
            text=completion.text,
            finish_reason=finish_reason,
            prompt_tokens=prepared.prompt_tokens,
            completion_tokens=len(completion.token_ids),
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        prepared = self._prepare(request)
        loop = asyncio.get_running_loop()
        deadline = None if self._generation_timeout_s is None else loop.time() + self._generation_timeout_s
        async with contextlib.aclosing(self._outputs(prepared)) as outputs:
            sent = 0
            while True:
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    output = await asyncio.wait_for(outputs.__anext__(), remaining)
                except StopAsyncIteration:
                    raise EngineError("vLLM ended the stream before the request finished") from None
                except asyncio.TimeoutError:
                    raise self._timeout() from None
                completion = output.outputs[0]
                piece, sent = completion.text[sent:], len(completion.text)
                if not output.finished:
                    if piece:
                        yield GenerationChunk(text=piece)
                    continue
                finish_reason = _finish_reason(completion.finish_reason)
                # Fail closed before the last piece and the finish reason go out.
                await self._check(prepared, completion)
                yield GenerationChunk(text=piece, finish_reason=finish_reason)
                yield GenerationChunk(prompt_tokens=prepared.prompt_tokens, completion_tokens=len(completion.token_ids))
                return

    async def check_health(self) -> None:
        if self._engine is None:
            raise EngineError("the vLLM engine has not started")
        try:
            await self._engine.check_health()
        except Exception as e:
            raise EngineError(f"vLLM is unhealthy: {type(e).__name__}: {e}") from e

    async def load_adapter(self, name: str, path: str) -> None:
        if not self._settings.enable_lora:
            raise AdapterNotSupported(f"cannot load adapter {name!r}: this vLLM model has enable_lora off")
        from vllm.lora.request import LoRARequest

        adapter = LoRARequest(name, self._next_adapter_id, path)
        self._next_adapter_id += 1
        try:
            loaded = await self._engine.add_lora(adapter)
        except Exception as e:
            raise EngineError(f"vLLM could not load adapter {name!r} from {path}: {type(e).__name__}: {e}") from e
        if not loaded:
            raise EngineError(f"vLLM did not load adapter {name!r} from {path}")
        replaced = self._adapters.get(name)
        self._adapters[name] = adapter
        if replaced is not None:
            await self._engine.remove_lora(replaced.lora_int_id)

    async def unload_adapter(self, name: str) -> None:
        if not self._settings.enable_lora:
            raise AdapterNotSupported(f"cannot unload adapter {name!r}: this vLLM model has enable_lora off")
        adapter = self._adapters.pop(name, None)
        if adapter is None:
            raise EngineError(f"no adapter named {name!r} is loaded; loaded: {sorted(self._adapters)}")
        await self._engine.remove_lora(adapter.lora_int_id)

    def _prepare(self, request: GenerationRequest) -> _Prepared:
        if self._engine is None:
            raise EngineError("the vLLM engine has not started")
        from vllm import SamplingParams as VllmSamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        token_ids = self._prompt_token_ids(request)
        context_length = self.capabilities.context_length
        if len(token_ids) >= context_length:
            raise PromptTooLong(
                f"the prompt has {len(token_ids)} tokens and the model's context window {context_length}; "
                "shorten the prompt"
            )
        sampling = request.sampling
        # As llama.cpp does: generation stops where the context window ends.
        arguments = sampling_arguments(sampling, max_tokens=min(sampling.max_tokens, context_length - len(token_ids)))
        grammar = None
        if sampling.grammar is not None:
            grammar = portable_grammar(sampling.grammar)
            arguments["structured_outputs"] = StructuredOutputsParams(grammar=grammar)
        return _Prepared(
            # A rendered token input: vLLM neither tokenizes it again nor adds a BOS.
            prompt={"type": "token", "prompt_token_ids": token_ids},
            sampling=VllmSamplingParams(**arguments),
            lora=self._lora_request(request.adapter),
            grammar=grammar,
        )

    def _prompt_token_ids(self, request: GenerationRequest) -> list[int]:
        tokenizer = self._tokenizer
        if request.messages is not None:
            text = tokenizer.apply_chat_template(
                [m.model_dump() for m in request.messages], tokenize=False, add_generation_prompt=True
            )
            # The chat template writes the special tokens (BOS included) itself.
            return list(tokenizer.encode(text, add_special_tokens=False))
        token_ids = list(tokenizer.encode(request.prompt, add_special_tokens=False))
        if not token_ids:
            raise EmptyPrompt("the prompt is empty: it has no tokens to continue from")
        # Templates such as sqlcoder-llama3 spell out <|begin_of_text|>; the model must not see two.
        if self._bos is not None and token_ids[0] != self._bos:
            token_ids.insert(0, self._bos)
        return token_ids

    def _lora_request(self, adapter: str | None) -> Any:
        if adapter is None:
            return None
        if not self._settings.enable_lora:
            raise AdapterNotSupported(f"adapter {adapter!r} asked for, but this vLLM model has enable_lora off")
        try:
            return self._adapters[adapter]
        except KeyError:
            raise EngineError(f"no adapter named {adapter!r} is loaded; loaded: {sorted(self._adapters)}") from None

    async def _outputs(self, prepared: _Prepared) -> AsyncIterator[Any]:
        """vLLM's cumulative outputs for one request; unless it finished, it is aborted in vLLM."""
        request_id = uuid.uuid4().hex
        finished = False
        results = self._engine.generate(prepared.prompt, prepared.sampling, request_id, lora_request=prepared.lora)
        try:
            async for output in results:
                finished = output.finished
                yield output
        except EngineError:
            raise
        except Exception as e:  # vLLM's own errors, whatever their class in this version
            raise EngineError(f"vLLM failed: {type(e).__name__}: {e}") from e
        finally:
            # Cancelled, timed out or the client left: the sequence must not go on taking a batch slot.
            await results.aclose()
            if not finished:
                await self._engine.abort(request_id)

    async def _last_output(self, prepared: _Prepared) -> Any:
        final = None
        async with contextlib.aclosing(self._outputs(prepared)) as outputs:
            async for output in outputs:
                final = output
        if final is None or not final.finished:
            raise EngineError("vLLM ended the request without a final output")
        return final

    async def _check(self, prepared: _Prepared, completion: Any) -> None:
        if prepared.grammar is None:
            return
        # A stop string (str) or the length limit cut the text; EOS or a stop token (None, int) is the model's end.
        ended_by_model = completion.finish_reason == "stop" and not isinstance(completion.stop_reason, str)
        # Parsing takes milliseconds to a few tenths of a second: off the event loop.
        await asyncio.to_thread(
            check_constrained_output, prepared.grammar, completion.text, ended_by_model=ended_by_model
        )

    def _timeout(self) -> GenerationTimeout:
        return GenerationTimeout(
            f"the generation took longer than the model's limit of {self._generation_timeout_s:g} s "
            "(generation_timeout_s) and was stopped"
        )


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise EngineError(f"{MISSING_EXTRA} ({e})") from e
    return vllm


def _bos_to_prepend(tokenizer: Any) -> int | None:
    """The BOS id when the tokenizer adds one to plain text (Llama 3 does, Qwen does not)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    return bos if list(tokenizer.encode("a", add_special_tokens=True))[:1] == [bos] else None


def _finish_reason(value: str | None) -> FinishReason:
    if value in ("stop", "length"):
        return value
    # "abort", "error" or "repetition": the request did not end as a generation should.
    raise EngineError(f"vLLM ended the generation with finish reason {value!r}")
