"""`POST /v1/sql/generate`: request and response bodies."""

from __future__ import annotations

from pydantic import Field, JsonValue, field_validator, model_validator

from text2sql.pipeline.answer import Attempt, Candidate, SqlAnswer, Timings, Usage
from text2sql.prompts import HistoryTurn
from text2sql.schema import DatabaseSchema
from text2sql.strict import StrictModel


class SqlGenerateRequest(StrictModel):
    question: str = Field(description="The question in plain language (English, Chinese, ...).")
    schema_: str | DatabaseSchema | None = Field(
        default=None,
        alias="schema",
        description="The schema: DDL text (CREATE TABLE statements) or structured JSON {tables: [...]}.",
    )
    database: str | None = Field(default=None, description="A database named in the app config, introspected live.")
    dialect: str | None = Field(
        default=None, description="SQL dialect of the answer (sqlglot id); default: the database's, else sqlite."
    )
    evidence: str | None = Field(default=None, description="Hints: business rules, value meanings.")
    history: list[HistoryTurn] = Field(
        default_factory=list,
        max_length=100,
        description="Earlier turns of this conversation, oldest first, each {question, sql}; the question follows up.",
    )
    model: str | None = Field(default=None, description="Served model name; the default model when absent.")
    execute: bool = Field(default=False, description="Run the SQL read-only on `database` and return rows.")
    max_rows: int | None = Field(default=None, gt=0, description="Row cap for execute (at most the database's).")
    validate_sql: bool = Field(
        default=True, alias="validate", description="Check the SQL with sqlglot against the schema; repair failures."
    )
    max_repairs: int | None = Field(default=None, ge=0, le=5, description="Override the app's max_repairs.")
    fix_identifiers: bool | None = Field(
        default=None,
        description="Fix unambiguous identifier slips (a real column on the wrong alias, case or separators) "
        "and another dialect's functions (CURDATE() for SQLite) without a model call; default: the app's "
        "pipeline.fix_identifiers.",
    )
    complete_joins: bool | None = Field(
        default=None,
        description="With fix_identifiers: join the one table a missing column sits on, one foreign key away, "
        "without a model call; default: the app's pipeline.complete_joins.",
    )
    bridge_joins: bool | None = Field(
        default=None,
        description="With fix_identifiers: a join whose condition compares a column with itself (T1.a = T1.a) is "
        "joined along the one shortest way of foreign keys instead, without a model call; default: the app's "
        "pipeline.bridge_joins.",
    )
    drop_unused_joins: bool | None = Field(
        default=None,
        description="With fix_identifiers: where the query sums or averages and counts nothing, drop an inner join of a table "
        "on the many side of a foreign key that nothing else reads (it repeats the aggregated rows); default: the "
        "app's pipeline.drop_unused_joins.",
    )
    drop_unnamed_joins: bool | None = Field(
        default=None,
        description="With fix_identifiers: where the query counts nothing, takes no DISTINCT values and is no branch of "
        "a set operation, drop an inner join of a table on the many side of a foreign key that nothing else reads "
        "and the question does not name; default: the app's pipeline.drop_unnamed_joins.",
    )
    relink_literals: bool | None = Field(
        default=None,
        description="With fix_identifiers, when the database is configured: a text column compared with string "
        "literals it never holds is compared on the one other column of its table that holds them, or a literal "
        "is respelled to the one value differing only in case; default: the app's pipeline.relink_literals.",
    )
    intersect_conflicting_filters: bool | None = Field(
        default=None,
        description="With fix_identifiers: a WHERE asking one column for two values (no row meets it) becomes one "
        "query per value, intersected; default: the app's pipeline.intersect_conflicting_filters.",
    )
    negate_across_joins: bool | None = Field(
        default=None,
        description="With fix_identifiers, for a negated question: a <> on a table reached through a one-to-many "
        "join (some row that differs) becomes NOT EXISTS (no matching row); default: the app's "
        "pipeline.negate_across_joins.",
    )
    drop_unasked_limits: bool | None = Field(
        default=None,
        description="With fix_identifiers, for a question with history: a LIMIT the answer adds when the previous "
        "turn's SQL had none and the question asks for no top or bottom rows is dropped; default: the app's "
        "pipeline.drop_unasked_limits.",
    )
    name_unasked_keys: bool | None = Field(
        default=None,
        description="With fix_identifiers: show an id column the answer selects bare by its table's one name column "
        "when the question asks for no id, code or number; default: the app's pipeline.name_unasked_keys.",
    )
    drop_unasked_family_names: bool | None = Field(
        default=None,
        description="With fix_identifiers: drop a family-name column (last_name...) the answer shows beside the same "
        "table's given name when the question asks for the given name only ('first name', 名); default: the app's "
        "pipeline.drop_unasked_family_names.",
    )
    n: int = Field(default=1, ge=1, le=16, description="Candidates to generate; > 1 votes by result (self-consistency).")
    followup_edit: bool | None = Field(
        default=None,
        description="With `history`, ask the model to change the previous SQL to answer the question, keeping its "
        "tables and conditions unless the question changes them (qwen-chat template). Default: the app's "
        "pipeline.followup_edit.",
    )
    greedy_candidate: bool | None = Field(
        default=None,
        description="With n > 1 and no temperature given, the first candidate is the greedy answer and the others "
        "are sampled; a tie in the vote goes to it. Default: the app's pipeline.greedy_candidate.",
    )
    value_linking: bool | None = Field(
        default=None, description="Show the model the database values the question mentions; default: the app's."
    )
    examples: int | None = Field(
        default=None, ge=0, le=8,
        description="Similar question/SQL pairs from the example store to show the model; default: the app's "
        "pipeline.examples.",
    )
    fallback_candidates: int | None = Field(
        default=None, ge=0, le=16,
        description="When n is 1 and the first answer fails its check or returns no rows, sample this many more and "
        "vote by result; 0 turns it off. Default: the app's pipeline.fallback_candidates.",
    )
    language_hint: bool | None = Field(
        default=None,
        description="For a Chinese question, tell the model the schema's names and values are English; default: "
        "the app's pipeline.language_hint.",
    )
    gloss_chinese: bool | None = Field(
        default=None,
        description="For a Chinese question, show the model which schema names its words mean, from a Chinese-English "
        "dictionary (listed in `glosses`); default: the app's pipeline.gloss_chinese.",
    )
    translate_question: bool | None = Field(
        default=None,
        description="For a Chinese question, have the model put it into English before it writes SQL (the English "
        "question is in `notes`); default: the app's pipeline.translate_questions.",
    )
    constrained: bool | None = Field(
        default=None, description="Grammar-constrained decoding to the schema's identifiers; default: the model's."
    )
    max_tokens: int | None = Field(default=None, gt=0, le=4096, description="Override the model's max_tokens.")
    temperature: float | None = Field(default=None, ge=0, le=2, description="Override the model's temperature.")

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @field_validator("question")
    @classmethod
    def _question_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question must not be blank")
        return value

    @field_validator("dialect")
    @classmethod
    def _dialect_known(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from text2sql.dialects import check_dialect

        try:
            return check_dialect(value)
        except ValueError as e:
            raise ValueError(f"unknown dialect {value!r}") from e

    @model_validator(mode="after")
    def _schema_source_consistent(self) -> SqlGenerateRequest:
        if self.schema_ is not None and self.database is not None:
            raise ValueError("give either 'schema' or 'database', not both")
        if self.execute and self.database is None:
            raise ValueError("'execute' needs 'database': SQL only runs on a configured database")
        return self


class SqlGenerateResponse(SqlAnswer):
    """The pipeline's answer, as the HTTP API returns it."""

    structured_query: dict[str, JsonValue] | None = Field(
        default=None,
        description="Table-QA models (SPACE-T) only: the model's structured query, which `sql` is built from: "
        "sel (selected column indices), agg (their aggregations), conds ([column, operator, value]), "
        "cond_conn_op (how conditions join) and from (the table).",
    )


class SchemaRefreshRequest(StrictModel):
    database: str | None = Field(default=None, description="The database to refresh; all when absent.")


__all__ = [
    "Attempt",
    "Candidate",
    "SchemaRefreshRequest",
    "SqlGenerateRequest",
    "SqlGenerateResponse",
    "Timings",
    "Usage",
]
