"""A Chinese question put into English by the same model before it writes SQL (`translate_question`).

Small models read an English schema far better from an English question: the 0.5B answers the same Spider
questions 17 points less often in Chinese. Translating first costs one short generation; the SQL prompt then
carries the English question, so schema selection, the prompt and the repairs all see English. Names, numbers
and quoted values are asked to stay as written, so a value stored in Chinese still matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from text2sql.pipeline.engine import Engine, GenerationRequest, SamplingParams
from text2sql.prompts.base import ChatMessage

INSTRUCTION = (
    "Translate this question about a database into English. Keep names, numbers and anything in quotes exactly "
    "as written. Reply with the English question only, on one line."
)
MAX_TOKENS = 96


@dataclass(frozen=True)
class Translation:
    english: str
    prompt_tokens: int
    completion_tokens: int


async def translate_question(engine: Engine, question: str, *, seed: int | None = None) -> Translation | None:
    """The question in English, or None when the model's reply is no usable question (empty, or cut short)."""
    request = GenerationRequest(
        messages=[ChatMessage(role="user", content=f"{INSTRUCTION}\n\n{question}")],
        sampling=SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0, seed=seed),
    )
    output = await engine.generate(request)
    english = _first_line(output.text)
    if not english or output.finish_reason == "length":
        return None
    return Translation(english, output.prompt_tokens, output.completion_tokens)


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        line = line.strip().strip('"“”').strip()
        if line:
            return line
    return ""
