from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StructuredOutputsParams:
    json: str | dict | None = None
    regex: str | None = None
    choice: list[str] | None = None
    grammar: str | None = None


class SamplingParams:
    """Keeps its keywords; vLLM's own class has these and many more."""

    _FIELDS = (
        "max_tokens", "temperature", "top_p", "stop", "seed", "presence_penalty", "frequency_penalty",
        "structured_outputs",
    )  # fmt: skip

    def __init__(self, **kwargs) -> None:
        unknown = set(kwargs) - set(self._FIELDS)
        if unknown:
            raise TypeError(f"SamplingParams got unexpected keywords {sorted(unknown)}")
        self.kwargs = kwargs
        for name in self._FIELDS:
            setattr(self, name, kwargs.get(name))
