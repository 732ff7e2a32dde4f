"""What the pipeline is asked: the task (question and switches) and the schema context it answers against."""

from __future__ import annotations

from pydantic import Field

from text2sql.examples import ExamplePair
from text2sql.prompts import HistoryTurn
from text2sql.schema import DatabaseSchema
from text2sql.strict import StrictModel


class ExecutionTarget(StrictModel):
    """Where a checked query may run, and its limits; resolved once per request by whoever knows the database."""

    url: str = Field(description="SQLAlchemy URL of the database (holds credentials: never shown).")
    dialect: str = Field(description="sqlglot dialect of the database.")
    max_rows: int = Field(gt=0, description="Row cap for this request.")
    timeout_s: float = Field(gt=0, description="Wall-clock limit per query.")
    max_bytes: int = Field(default=16 * 1024 * 1024, gt=0, description="Result bytes (as JSON) for the whole request.")


class SchemaContext(StrictModel):
    """The schema a question is answered against, resolved before the model is involved."""

    schema_: DatabaseSchema | None = Field(default=None, description="Parsed: tables can be selected, names checked.")
    raw_text: str | None = Field(default=None, description="Schema text that did not parse: shown to the model as is.")
    dialect: str = Field(description="The answer's dialect.")
    database: str | None = Field(default=None, description="The configured database's name, when one was named.")
    database_dialect: str | None = Field(default=None, description="The database's own dialect.")
    target: ExecutionTarget | None = Field(default=None, description="Set when the SQL is to be run.")
    source: ExecutionTarget | None = Field(
        default=None,
        description="The configured database, for SQL the server writes itself, never model output: a table-QA "
        "engine (SPACE-T) reads its rows. Set whenever a configured database is named.",
    )
    schema_ms: float = Field(default=0.0, description="Time spent resolving the schema.")
    examples: list[ExamplePair] = Field(
        default_factory=list, description="Question/SQL pairs like the question, from the example store, for the prompt."
    )
    value_matches: list[str] = Field(
        default_factory=list, description="The database's values the question mentions, as `table.column = 'value'`."
    )


class SqlTask(StrictModel):
    """One question and the switches a caller may set; every None falls back to the model's or pipeline's default."""

    question: str = Field(description="The question in plain language.")
    evidence: str | None = Field(default=None, description="Hints: business rules, value meanings.")
    history: list[HistoryTurn] = Field(default_factory=list, description="Earlier turns, oldest first.")
    validate_sql: bool = Field(default=True, description="Check the SQL with sqlglot and repair failures.")
    max_repairs: int | None = Field(default=None, ge=0, description="Repair rounds; default from the pipeline.")
    fix_identifiers: bool | None = Field(
        default=None, description="Fix unambiguous identifier and dialect slips without a model call; default from the pipeline."
    )
    complete_joins: bool | None = Field(
        default=None, description="Join the one table a missing column sits on, one key away; default from the pipeline."
    )
    bridge_joins: bool | None = Field(
        default=None, description="Mend a join that compares a column with itself along the keys; default from the pipeline."
    )
    drop_unused_joins: bool | None = Field(
        default=None, description="Drop an unread many-side join under an aggregate; default from the pipeline."
    )
    drop_unnamed_joins: bool | None = Field(
        default=None,
        description="Drop an unread many-side join whose table the question does not name; default from the pipeline.",
    )
    relink_literals: bool | None = Field(
        default=None, description="Move a literal to the column or spelling the data holds; default from the pipeline."
    )
    intersect_conflicting_filters: bool | None = Field(
        default=None, description="Ask one column's two values apart and intersect; default from the pipeline."
    )
    negate_across_joins: bool | None = Field(
        default=None,
        description="A negated question's <> across a one-to-many join becomes NOT EXISTS; default from the pipeline.",
    )
    drop_unasked_limits: bool | None = Field(
        default=None,
        description="Drop a LIMIT a follow-up added without asking for top rows; default from the pipeline.",
    )
    name_unasked_keys: bool | None = Field(
        default=None, description="Show a bare id column by its table's name column; default from the pipeline."
    )
    drop_unasked_family_names: bool | None = Field(
        default=None,
        description="Drop a family-name column shown beside the given name the question asks for; default from the pipeline.",
    )
    n: int = Field(default=1, ge=1, description="Candidates per round; > 1 votes by result.")
    followup_edit: bool | None = Field(
        default=None, description="Put a follow-up as a change to the previous SQL; default from the pipeline."
    )
    greedy_candidate: bool | None = Field(
        default=None, description="With n > 1, make the first candidate the greedy answer; default from the pipeline."
    )
    fallback_candidates: int | None = Field(
        default=None, ge=0, description="Candidates sampled when the first answer fails or is empty; default from the pipeline."
    )
    language_hint: bool | None = Field(
        default=None, description="Tell the model a Chinese question meets an English schema; default: the pipeline's."
    )
    translate_question: bool | None = Field(
        default=None, description="Put a Chinese question into English first; default: the pipeline's."
    )
    gloss_chinese: bool | None = Field(
        default=None, description="Show the schema names a Chinese question's words mean; default: the pipeline's."
    )
    constrained: bool | None = Field(default=None, description="Grammar-constrained decoding; default: the model's.")
    max_tokens: int | None = Field(default=None, gt=0, description="Generation cap; default: the model's.")
    temperature: float | None = Field(default=None, ge=0, description="Sampling temperature; default: the model's.")
