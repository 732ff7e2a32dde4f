"""What every prompt template takes and gives back.

Training renders its examples through the same templates, so a fine-tuned model is served
with exactly the prompt it learned.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from text2sql.examples import ExamplePair
from text2sql.strict import StrictModel


class ChatMessage(StrictModel):
    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(description="What is said.")


class RepairContext(StrictModel):
    """A failed attempt to show the model, so it can correct itself."""

    sql: str = Field(description="The SQL the model wrote last time.")
    error: str = Field(description="Why it failed: parse, validation or execution error.")
    valid_identifiers: str = Field(default="", description="The real table and column names, one table per line.")


class HistoryTurn(StrictModel):
    """An earlier turn of the same conversation: what was asked and the SQL that answered it."""

    question: str = Field(description="The earlier question.")
    sql: str = Field(description="The SQL that answered it.")


class PromptInput(StrictModel):
    question: str = Field(description="The user's question in plain language.")
    schema_text: str = Field(description="The schema, already rendered in the template's schema format.")
    dialect: str = Field(default="sqlite", description="sqlglot dialect id the SQL must be written in.")
    evidence: str | None = Field(default=None, description="Hints: business rules, value meanings.")
    repair: RepairContext | None = Field(default=None, description="Set when re-prompting after a failure.")
    history: list[HistoryTurn] = Field(
        default_factory=list, description="Earlier turns, oldest first; the question is a follow-up to them."
    )
    examples: list[ExamplePair] = Field(
        default_factory=list, description="Question/SQL pairs like the question, shown after the schema."
    )
    value_matches: list[str] = Field(
        default_factory=list, description="Database values the question mentions, as `table.column = 'value'`."
    )
    glosses: list[str] = Field(
        default_factory=list, description="A Chinese question's words and the schema names they mean (`身高 = people.Height`)."
    )
    chinese_question: bool = Field(
        default=False, description="The question is in Chinese and the schema in English: the template says so."
    )
    followup_edit: bool = Field(
        default=False,
        description="With history: the question is put as a change to the previous SQL, whose tables and conditions "
        "stay unless the question changes them.",
    )


class RenderedPrompt(StrictModel):
    """Either chat messages (the engine applies the model's chat template) or a raw completion prompt."""

    messages: list[ChatMessage] | None = Field(default=None, description="Chat form.")
    prompt: str | None = Field(default=None, description="Raw completion form.")

    @model_validator(mode="after")
    def _exactly_one_form(self) -> RenderedPrompt:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a rendered prompt has exactly one of 'messages' or 'prompt'")
        return self


class PromptTemplate(ABC):
    template_id: ClassVar[str]
    # Which renderer the schema goes through before it reaches `schema_text`.
    schema_format: ClassVar[Literal["ddl", "mschema"]] = "ddl"
    # The sqlglot dialect the model writes best, because it was trained on it. When set, the server may
    # ask for this dialect and transpile the answer to the requested one with sqlglot. None: the model
    # writes the requested dialect directly.
    native_dialect: ClassVar[str | None] = None
    # Stop sequences that end the SQL in this template's format; the engine adds the model's own EOS.
    # Engines should copy the list before changing it: it is shared by every render.
    default_stop: ClassVar[list[str]] = []

    @abstractmethod
    def render(self, prompt_input: PromptInput) -> RenderedPrompt: ...


def bullet_lines(text: str) -> list[str]:
    """Each non-blank line of `text` as a `- ` bullet (lines already starting with `-` kept as they are),
    for templates whose instructions are a bullet list."""
    bullets = []
    for line in text.strip().splitlines():
        line = line.strip()
        if line:
            bullets.append(line if line.startswith("-") else f"- {line}")
    return bullets


def repair_bullets(repair: RepairContext) -> list[str]:
    """A failed attempt as instruction bullets, for raw-prompt templates that cannot add a chat turn:
    the failed query, its error and the real identifiers, before the answer prefix."""
    lines = [
        f"- This query was tried before and failed:\n{repair.sql.strip()}",
        f"- Error: {repair.error.strip()}",
    ]
    if repair.valid_identifiers.strip():
        lines.append(f"- The valid tables and columns are:\n{repair.valid_identifiers.strip()}")
    lines.append("- Write a corrected query that does not repeat this error.")
    return lines
