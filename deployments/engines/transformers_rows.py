"""One request inside a batched `generate()` call: its tokens, its sampling, its stop strings and its text.

A batch runs in one worker thread. After every step, one stopping criterion (`watch_rows`) hands each row its
new token: the row decodes its text, cuts it at the first stop string, counts its own max_tokens, checks its
stop flag (the request was cancelled or ran out of time), streams what is safe to show, and says when it is done.
transformers then pads that row while the others go on. TextIteratorStreamer would not do here: it streams
a batch of one.

Requests whose sampling agrees share one `generate()` call: every greedy request together, sampled ones by
temperature and top_p. A sampled request with a seed runs alone, so its seed repeats its answer. Rows for
different LoRA adapters (or the base model) never share a call.
OpenAI's presence and frequency penalties apply per row (`penalties_processor`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from text2sql.pipeline.engine import FinishReason, GenerationOutput, SamplingParams

Decode = Callable[[list[int]], str]
_UNFINISHED_CHARACTER = "\ufffd"  # what decoding shows for a character whose bytes are not all generated yet


@dataclass
class Row:
    prompt_ids: list[int]
    sampling: SamplingParams
    adapter: str | None = None  # LoRA adapter name; None is the base model
    on_text: Callable[[str], None] | None = None  # streaming: called from the worker thread
    completion_ids: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: FinishReason | None = None
    timed_out: bool = False
    error: BaseException | None = None
    started: bool = False  # handed to a batch: its caller must wait for `finished` before leaving
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    _emitted: int = 0
    _deadline: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def request_stop(self) -> None:
        """The request was cancelled or its client left: the row ends at its next token."""
        self._stop.set()

    def start_clock(self, timeout_s: float | None) -> None:
        self._deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def should_stop(self) -> bool:
        if self._deadline is not None and not self._stop.is_set() and time.monotonic() >= self._deadline:
            self.timed_out = True
            self._stop.set()
        return self._stop.is_set()

    def advance(self, token: int, *, end_ids: frozenset[int], decode: Decode) -> bool:
        """Take one generated token; True once the row is done."""
        if self.finish_reason is not None:
            return True
        if self.should_stop() or token in end_ids:
            return self._finish("stop")
        self.completion_ids.append(token)
        text = decode(self.completion_ids)
        cut = first_stop(text, self.sampling.stop)
        self.text = text if cut is None else text[:cut]
        if cut is not None:
            return self._finish("stop")
        if len(self.completion_ids) >= self.sampling.max_tokens:
            return self._finish("length")
        self._emit(safe_length(self.text, self.sampling.stop))
        return False

    def close(self) -> None:
        """generate() returned or never ran: a row not finished yet was stopped, or ran out of tokens."""
        if self.finish_reason is None:
            self._finish("stop" if self._stop.is_set() else "length")

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.finish_reason = self.finish_reason or "stop"

    def output(self) -> GenerationOutput:
        return GenerationOutput(
            text=self.text,
            finish_reason=self.finish_reason or "stop",
            prompt_tokens=len(self.prompt_ids),
            completion_tokens=len(self.completion_ids),
        )

    def _finish(self, reason: FinishReason) -> bool:
        self.finish_reason = reason
        self._emit(len(self.text))
        return True

    def _emit(self, upto: int) -> None:
        if self.on_text is not None and upto > self._emitted:
            self.on_text(self.text[self._emitted : upto])
            self._emitted = upto


def first_stop(text: str, stops: list[str]) -> int | None:
    """Where the earliest stop string starts in `text`, or None."""
    found = [index for stop in stops if stop and (index := text.find(stop)) >= 0]
    return min(found) if found else None


def safe_length(text: str, stops: list[str]) -> int:
    """How much of `text` can be shown now: not a tail that may become a stop string or a whole character."""
    held = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), held, -1):
            if text.endswith(stop[:size]):
                held = size
                break
    end = len(text) - held
    while end > 0 and text[end - 1] == _UNFINISHED_CHARACTER:
        end -= 1
    return end


def sampling_group(sampling: SamplingParams, index: int) -> Hashable:
    """Rows with the same key share one generate() call (see the module's docstring)."""
    if sampling.temperature == 0:
        return ("greedy",)
    if sampling.seed is not None:
        return ("seeded", index)
    return ("sampled", sampling.temperature, sampling.top_p)


def group_rows(rows: list[Row]) -> list[list[Row]]:
    groups: dict[Hashable, list[Row]] = {}
    for index, row in enumerate(rows):
        # One generate() call runs with one adapter active.
        groups.setdefault((row.adapter, sampling_group(row.sampling, index)), []).append(row)
    return list(groups.values())


def generation_options(rows: list[Row]) -> dict[str, Any]:
    """The GenerationConfig fields of one group; the model's own sampling defaults never apply."""
    first = rows[0].sampling
    options: dict[str, Any] = {
        "max_new_tokens": max(row.sampling.max_tokens for row in rows),
        "do_sample": first.temperature > 0,
        # Explicit, because a field left None is filled from the model's generation_config, then transformers'
        # defaults (top_k=50); OpenAI's API has neither top_k nor a repetition penalty.
        "repetition_penalty": 1.0,
        "num_beams": 1,
    }
    if first.temperature > 0:
        options |= {"temperature": first.temperature, "top_p": first.top_p, "top_k": 0}
    return options


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[list[list[int]], list[list[int]]]:
    """(input_ids, attention_mask), padded on the left so that every row's next token comes at the same place."""
    width = max(len(s) for s in sequences)
    ids = [[pad_id] * (width - len(s)) + s for s in sequences]
    mask = [[0] * (width - len(s)) + [1] * len(s) for s in sequences]
    return ids, mask


def watch_rows(rows: list[Row], *, end_ids: frozenset[int], decode: Decode) -> Any:
    """The stopping criterion that feeds each row its token after every step."""
    import torch
    from transformers import StoppingCriteria

    class RowWatch(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
            last = input_ids[:, -1].tolist()
            done = [row.advance(token, end_ids=end_ids, decode=decode) for row, token in zip(rows, last, strict=True)]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return RowWatch()


def penalties_processor(rows: list[Row], *, prompt_width: int) -> Any | None:
    """OpenAI's presence and frequency penalties, per row, over the tokens generated so far; None if all are 0."""
    if not any(row.sampling.presence_penalty or row.sampling.frequency_penalty for row in rows):
        return None
    import torch
    from transformers import LogitsProcessor

    presence = torch.tensor([row.sampling.presence_penalty for row in rows])
    frequency = torch.tensor([row.sampling.frequency_penalty for row in rows])

    class OpenAIPenalties(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            generated = input_ids[:, prompt_width:]
            if generated.shape[1] == 0:
                return scores
            counts = torch.zeros_like(scores).scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
            penalty = frequency.to(scores)[:, None] * counts + presence.to(scores)[:, None] * (counts > 0)
            return scores - penalty

    return OpenAIPenalties()
