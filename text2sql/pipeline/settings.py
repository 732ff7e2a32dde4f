"""What the pipeline is told about a model and how far it may go: generation defaults, repair and voting bounds."""

from __future__ import annotations

from pydantic import Field, PositiveInt

from text2sql.strict import StrictModel


class GenerationDefaults(StrictModel):
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: PositiveInt = Field(default=256, description="Cap on generated tokens per request.")
    stop: list[str] = Field(default_factory=list, description="Stop strings, added to the model's own EOS.")
    seed: int | None = Field(default=None, description="Sampling seed; None draws a fresh one.")


class ModelProfile(StrictModel):
    """The part of a served model's config that shapes its prompt and sampling; training renders with it too."""

    name: str = Field(description="Served model name, reported in answers.")
    prompt_template: str = Field(description="Prompt template id of the model family.")
    generation: GenerationDefaults = Field(default_factory=GenerationDefaults, description="Generation defaults.")
    constrained_decoding: bool = Field(default=False, description="Use the schema grammar unless a request says otherwise.")
    adapter: str | None = Field(default=None, description="LoRA adapter the engine generates with; None is the base model.")


class PipelineSettings(StrictModel):
    max_repairs: int = Field(default=2, ge=0, le=5, description="Re-prompts with the error after a failed attempt.")
    fix_identifiers: bool = Field(
        default=True,
        description="Before a re-prompt, requalify a real column used on the wrong alias and fix case, quoting and "
        "separator slips in names, when exactly one schema name fits, and rewrite another dialect's functions "
        "(CURDATE() for SQLite); no model call.",
    )
    complete_joins: bool = Field(
        default=True,
        description="With fix_identifiers: a column that only a table one foreign key away has is reached by joining "
        "that table on the key, when exactly one table and one key fit; no model call.",
    )
    bridge_joins: bool = Field(
        default=True,
        description="With fix_identifiers: a join whose condition compares a column with itself (T1.a = T1.a) is "
        "joined along the one shortest way of foreign keys to the joined table instead, at most two tables "
        "between; no model call.",
    )
    drop_unused_joins: bool = Field(
        default=True,
        description="With fix_identifiers: in a query level that sums or averages (not over DISTINCT) and counts "
        "nothing, an inner join of a table on the many side of a foreign key whose columns nothing else reads is "
        "dropped, as it repeats and filters the rows aggregated; a count over such a join counts the joined rows, "
        "as asked, and stays; no model call.",
    )
    drop_unnamed_joins: bool = Field(
        default=True,
        description="With fix_identifiers: in a query level that neither counts, nor takes DISTINCT values, nor is a "
        "branch of UNION, INTERSECT or EXCEPT, such an unread many-side join is dropped too when the question does "
        "not name its table (teachers JOIN course_arrange for 'teachers aged 32'); a question that names it keeps "
        "it as its filter ('teachers who teach a course'); no model call.",
    )
    relink_literals: bool = Field(
        default=True,
        description="With fix_identifiers, where the query may run: a text column compared with string literals "
        "that it never holds has the comparison moved to the one other column of its table that holds them all, "
        "or a literal respelled to the column's one value that differs from it only in case; the database is "
        "asked, read-only; no model call.",
    )
    intersect_conflicting_filters: bool = Field(
        default=True,
        description="With fix_identifiers: a WHERE that asks one column for two values (T2.Language = 'English' AND "
        "T2.Language = 'French', which no row meets) becomes one query per value, intersected (the entities that "
        "have both); a lone COUNT counts the intersection; no model call.",
    )
    negate_across_joins: bool = Field(
        default=True,
        description="With fix_identifiers, when the question is negated (not, no, never, without, 不, 没有...): a "
        "<> on a table the selected one reaches through a one-to-many foreign key (students JOIN has_pet JOIN pets "
        "WHERE pettype <> 'cat': students with some other pet) becomes NOT EXISTS of the matching row (students "
        "with no cat), and the join that only carried it goes; no model call.",
    )
    drop_unasked_limits: bool = Field(
        default=True,
        description="With fix_identifiers, for a follow-up: a LIMIT the answer adds when the previous turn's SQL "
        "had none and the follow-up asks for no top or bottom rows (no 'top', 'most', 'best', '-est', 最, 前...) "
        "is dropped, its ORDER BY kept; no model call.",
    )
    name_unasked_keys: bool = Field(
        default=True,
        description="With fix_identifiers: an id column the answer shows bare (a table's own key, or a foreign key "
        "to one) is shown by its table's one name column (Name, Title, genre_name...) when the question asks for no "
        "id, code or number: 'Which playlists are empty?' gets the playlists' names, not their PlaylistId; a foreign "
        "key's table is joined with a LEFT JOIN, so the rows stay the same; no model call.",
    )
    drop_unasked_family_names: bool = Field(
        default=True,
        description="With fix_identifiers: when the question asks for a given name and no family name ('first "
        "name' but no 'last name', 'surname' or 'full name'; 名 but no 姓 or 全名), a family-name column (last_name, "
        "lname, surname...) the answer shows beside the same table's given name is dropped; no model call.",
    )
    max_candidates: int = Field(default=8, ge=1, le=16, description="Largest n a request may ask for.")
    value_linking: bool = Field(
        default=False,
        description="Show the model the database values its question mentions (`table.column = 'value'`), from an "
        "index of each text column's distinct values built with the schema.",
    )
    examples: int = Field(
        default=0, ge=0, le=8,
        description="Question/SQL pairs from the example store shown after the schema, the most similar to the "
        "question (BM25); 0 shows none.",
    )
    example_store: str | None = Field(
        default=None,
        description="JSON or JSON-lines file of {question, sql} pairs (Spider's train split loads as is); a "
        "database's own `examples` file overrides it. Never an evaluation set.",
    )
    fallback_candidates: int = Field(
        default=0, ge=0, le=16,
        description="When the greedy answer fails its check or returns no rows, sample this many candidates from the "
        "same prompt (cached: each costs only its decoding) and vote by result, before any repair round.",
    )
    language_hint: bool = Field(
        default=False,
        description="For a question written in Chinese, tell the model (in Chinese) that the schema's names and values "
        "are English and must be matched by meaning; English questions are unchanged.",
    )
    gloss_chinese: bool = Field(
        default=False,
        description="For a question written in Chinese, show the model which schema names its words mean, read from "
        "a Chinese-English dictionary (CC-CEDICT: 身高 = people.Height); no model call. English questions are unchanged.",
    )
    translate_questions: bool = Field(
        default=False,
        description="Have the model put a Chinese question into English (one short generation) before it writes "
        "SQL from the English question; English questions are unchanged.",
    )
    repair_temperature: float = Field(
        default=0.3, ge=0, le=2,
        description="Temperature for repair rounds after a greedy first attempt, so a retry can differ.",
    )
    followup_edit: bool = Field(
        default=True,
        description="For a question with history, ask the model to change the previous SQL to answer it, keeping its "
        "tables, conditions, grouping, order and limit unless the question changes them (the qwen-chat template).",
    )
    greedy_candidate: bool = Field(
        default=True,
        description="With n > 1 and no temperature in the request, the first candidate is the greedy answer and the "
        "others are sampled; a tie in the vote goes to the greedy answer's group.",
    )
    candidate_temperature: float = Field(
        default=0.7, gt=0, le=2, description="Temperature for n > 1 when the request gives none."
    )
    max_history_turns: int = Field(default=6, ge=0, le=50, description="Earlier turns kept; the oldest go first.")
    max_history_tokens: int = Field(
        default=1500, ge=0, description="Token budget for earlier turns (estimated); the oldest go first."
    )
    context_reserve_tokens: int = Field(
        default=512, ge=0, description="Context kept free for instructions and the question when fitting a schema."
    )
