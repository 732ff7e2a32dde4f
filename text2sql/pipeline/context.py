"""Fit a question's context into the model's window: the history that fits, the schema that fits beside it."""

from __future__ import annotations

from dataclasses import dataclass

from text2sql.dialects import transpiled
from text2sql.prompts import HistoryTurn
from text2sql.schema import DatabaseSchema
from text2sql.schema.render import render_ddl, render_mschema
from text2sql.schema.select import select_tables

# Characters per token for budgeting schema text; code and identifiers run about 3 to 4.
CHARS_PER_TOKEN = 3


@dataclass(frozen=True)
class PromptSchema:
    schema: DatabaseSchema | None  # the tables shown to the model: what its SQL is checked against
    text: str
    tables_used: list[str] | None


def fit_schema(
    schema: DatabaseSchema | None,
    question: str,
    *,
    raw_text: str | None = None,
    budget_chars: int,
    schema_format: str,
    database_dialect: str | None = None,
) -> PromptSchema:
    """The schema text for the prompt, cut to the tables relevant to the question when it is too long."""
    if schema is None:
        return PromptSchema(schema=None, text=raw_text or "", tables_used=None)
    with_samples = any(c.samples for t in schema.tables for c in t.columns)

    def render(subset: DatabaseSchema) -> str:
        if schema_format == "mschema":
            return render_mschema(subset, db_id=subset.name)
        return render_ddl(subset, samples=with_samples, dialect=database_dialect)

    subset, tables_used = select_tables(schema, question, budget_chars=budget_chars, render=render)
    return PromptSchema(schema=subset, text=render(subset), tables_used=tables_used)


def cap_history(history: list[HistoryTurn], *, max_turns: int, max_tokens: int) -> tuple[list[HistoryTurn], int]:
    """The most recent turns that fit both limits, oldest first, and how many older ones were left out."""
    kept: list[HistoryTurn] = []
    budget_chars = max_tokens * CHARS_PER_TOKEN
    for turn in reversed(history[-max_turns:] if max_turns else []):
        cost = len(turn.question) + len(turn.sql)
        if cost > budget_chars:
            break
        budget_chars -= cost
        kept.append(turn)
    kept.reverse()
    return kept, len(history) - len(kept)


def history_in_dialect(history: list[HistoryTurn], *, source: str, target: str) -> list[HistoryTurn]:
    """Earlier SQL is in the answer's dialect; the model reads and writes its own."""
    return [turn.model_copy(update={"sql": _transpiled_or_same(turn.sql, source, target)}) for turn in history]


def history_tokens(history: list[HistoryTurn]) -> int:
    return sum(len(t.question) + len(t.sql) for t in history) // CHARS_PER_TOKEN


def schema_budget_chars(
    *, context_length: int, max_tokens: int, reserve_tokens: int, history: list[HistoryTurn]
) -> int:
    """What is left of the context for schema text once the answer, the instructions and the history have theirs."""
    budget_tokens = context_length - max_tokens - reserve_tokens - history_tokens(history)
    return max(1, budget_tokens) * CHARS_PER_TOKEN


def identifier_listing(schema: DatabaseSchema | None) -> str:
    """The real table and column names, one table per line, for a repair prompt."""
    if schema is None:
        return ""
    return "\n".join(f"{t.name}: {', '.join(c.name for c in t.columns)}" for t in schema.tables)


def _transpiled_or_same(sql: str, source: str, target: str) -> str:
    try:
        return transpiled(sql, source, target)
    except ValueError:
        return sql  # best effort: the model can still read it
