"""A complete fake engine for tests that must not load weights (error paths, unit tests).

The tests that prove a feature use the real llama.cpp engine; this one stands in where the model's
output does not matter, or where a failure has to be provoked on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from text2sql.pipeline.engine import (
    AdapterInvalid,
    AdapterNotLoaded,
    Engine,
    EngineCapabilities,
    EngineError,
    GenerationChunk,
    GenerationOutput,
    GenerationRequest,
)


class FakeEngine(Engine):
    def __init__(self, reply: str | list[str] = "SELECT 1", *, fail_with: str | None = None, delay_s: float = 0.0) -> None:
        # A list is a script: each generation takes the next reply, the last one repeats.
        self.replies = [reply] if isinstance(reply, str) else list(reply)
        self.fail_with = fail_with
        self.delay_s = delay_s
        self.started = False
        self.requests: list[GenerationRequest] = []

    async def start(self) -> None:
        self.started = True

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(context_length=4096)

    def _next_reply(self) -> str:
        return self.replies[min(len(self.requests) - 1, len(self.replies) - 1)]

    def _words(self, request: GenerationRequest) -> list[str]:
        self.requests.append(request)
        if self.fail_with:
            raise EngineError(self.fail_with)
        return self._next_reply().split(" ")[: request.sampling.max_tokens]

    async def generate(self, request: GenerationRequest) -> GenerationOutput:
        words = self._words(request)
        await asyncio.sleep(self.delay_s)
        finish = "length" if len(words) < len(self._next_reply().split(" ")) else "stop"
        return GenerationOutput(
            text=" ".join(words), finish_reason=finish, prompt_tokens=len(self._prompt_text(request).split()),
            completion_tokens=len(words),
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        words = self._words(request)
        for index, word in enumerate(words):
            await asyncio.sleep(self.delay_s / max(1, len(words)))
            yield GenerationChunk(text=word if index == 0 else " " + word)
        yield GenerationChunk(finish_reason="stop")
        yield GenerationChunk(prompt_tokens=len(self._prompt_text(request).split()), completion_tokens=len(words))

    async def check_health(self) -> None:
        if not self.started:
            raise EngineError("not started")

    @staticmethod
    def _prompt_text(request: GenerationRequest) -> str:
        if request.prompt is not None:
            return request.prompt
        return " ".join(m.content for m in request.messages or [])


class EchoQuestionEngine(FakeEngine):
    """A model fully taken over by prompt injection: it answers with the question's text, verbatim.

    It lets a test put any SQL (stacked statements, file reads, endless queries) in front of the
    pipeline's guards and a real database, exactly as a compromised model would produce it.
    """

    def _next_reply(self) -> str:
        request = self.requests[-1]
        if request.prompt is not None:
            text = request.prompt
        else:
            # The current question is the last user turn that asks one: earlier turns (history) come
            # before it, and a repair's feedback after it.
            users = [m.content for m in request.messages if m.role == "user"]
            text = next((content for content in reversed(users) if "Question:" in content), users[0])
        # The question is its own paragraph: what follows it (a follow-up's edit instruction) is the template's.
        return text.rsplit("Question:", 1)[-1].split("\n\n", 1)[0].strip()


class FakeAdapterEngine(FakeEngine):
    """Loads 'adapters' (any directory holding adapter_config.json) and answers `<adapter or base>@<pid>`, so a
    test sees which adapter, and which replica, answered. For the serving side of adapters: routing,
    multiplexing, the catalogue. The real engines' adapters are proven in tests/engines/test_adapters.py."""

    def __init__(self) -> None:
        super().__init__()
        self.adapters: dict[str, str] = {}

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(context_length=4096, adapters=True)

    async def load_adapter(self, name: str, path: str) -> None:
        import os

        if not os.path.isfile(os.path.join(path, "adapter_config.json")):
            raise AdapterInvalid(f"{path} holds no adapter_config.json")
        self.adapters[name] = path

    async def unload_adapter(self, name: str) -> None:
        if self.adapters.pop(name, None) is None:
            raise AdapterNotLoaded(f"no adapter {name!r} is loaded")

    def _next_reply(self) -> str:
        import os

        adapter = self.requests[-1].adapter
        if adapter is not None and adapter not in self.adapters:
            raise AdapterNotLoaded(f"adapter {adapter!r} asked for but not loaded")
        return f"{adapter or 'base'}@{os.getpid()}"
