"""What the pipeline answers: the SQL, the verdict, the trace of attempts, rows when run, usage and timings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from text2sql.strict import StrictModel


class Usage(StrictModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Timings(StrictModel):
    queue_ms: float = Field(description="From the ingress sending the request until the model server took it.")
    schema_ms: float = Field(default=0.0, description="Resolving the schema (introspection, when not cached).")
    generate_ms: float = Field(description="Time inside the engine, all attempts.")
    execute_ms: float = Field(default=0.0, description="Time running SQL on the database, all attempts.")
    total_ms: float = Field(default=0.0, description="Wall time at the ingress, request in to response out.")


class Attempt(StrictModel):
    """One generated candidate and how far it got."""

    round: int = Field(description="0 for the first generation, 1.. for repairs.")
    sql: str = Field(description="The SQL as extracted from the model's reply.")
    stage: Literal["extract", "validate", "transpile", "execute", "ok"] = Field(
        description="Where it failed, or 'ok'."
    )
    error: str | None = Field(default=None, description="Why it failed.")
    code: str | None = Field(default=None, description="Machine-readable failure kind, e.g. not_read_only.")
    fixes: list[str] = Field(
        default_factory=list,
        description="Slips fixed without a model call (names, another dialect's functions, names respelled as the "
        "database spells them), as 'before -> after'.",
    )


class Candidate(StrictModel):
    sql: str
    votes: int = Field(description="Candidates that agreed with this one (same result, or same SQL).")


class SqlAnswer(StrictModel):
    sql: str = Field(description="The SQL in `dialect`; empty when none could be produced.")
    success: bool = Field(description="A single read-only statement that passed every enabled check.")
    error: str | None = Field(default=None, description="Why not, when success is false.")
    model: str = Field(description="The served model that answered.")
    dialect: str = Field(description="Dialect of `sql`.")
    validated: bool = Field(description="Whether sqlglot validation ran and passed.")
    validation_error: str | None = Field(default=None, description="Why the SQL is not validated, when it is not.")
    database: str | None = Field(default=None, description="The database named in the request.")
    tables_used: list[str] | None = Field(
        default=None, description="Tables shown to the model (fewer than the schema's when it had to be cut)."
    )
    columns: list[str] | None = Field(default=None, description="Result columns, when executed.")
    rows: list[list[JsonValue]] | None = Field(default=None, description="Result rows, when executed.")
    row_count: int | None = Field(default=None, description="Rows returned, when executed.")
    truncated: bool | None = Field(default=None, description="True when the row cap cut the result.")
    attempts: list[Attempt] = Field(default_factory=list, description="Every candidate tried, in order.")
    candidates: list[Candidate] | None = Field(default=None, description="Vote counts, when n > 1.")
    history_used: int = Field(default=0, description="Earlier turns shown to the model.")
    value_matches: list[str] = Field(
        default_factory=list, description="Database values the question mentions, shown to the model (value linking)."
    )
    glosses: list[str] = Field(
        default_factory=list,
        description="A Chinese question's words and the schema names they mean, shown to the model (gloss_chinese).",
    )
    examples_used: list[str] = Field(
        default_factory=list, description="Questions of the example pairs shown to the model (most similar last)."
    )
    history_dropped: int = Field(default=0, description="Oldest turns left out to fit the history limits.")
    notes: list[str] = Field(default_factory=list, description="What the server changed about the request, and why.")
    raw_output: str = Field(description="The model's last reply before extraction.")
    usage: Usage
    timings: Timings
