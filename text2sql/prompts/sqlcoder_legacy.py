"""`sqlcoder-legacy`: the prompt of defog's CodeLlama-based SQLCoder models (sqlcoder-7b-2, sqlcoder-70b-alpha).

The text is defog-ai/sqlcoder's `prompt.md`, as its `inference.py` formats it: ### Task, ### Instructions,
### Database Schema, ### Answer, and the answer opened with `[SQL]` and a newline. The published
instruction (answer 'I do not know' when the schema cannot answer) is kept, because the models were
trained with it; our dialect line, the evidence and a failed attempt are added as further bullets.

A conversation's earlier turns become a `### Previous Questions` section between the schema and
`### Answer`, where defog's sql-eval puts its `{k_shot_prompt}` of example questions and their SQL
(prompts/README.md). Each earlier question and its SQL are written in the model's own tags
(`[QUESTION]...[/QUESTION]`, `[SQL]...[/SQL]`), oldest first, so they read like the answers it was trained
to write. Without history the section is absent and the prompt is the published one.
"""

from __future__ import annotations

from text2sql.dialects import dialect_display_name
from text2sql.prompts.base import (
    HistoryTurn,
    PromptInput,
    PromptTemplate,
    RenderedPrompt,
    bullet_lines,
    repair_bullets,
)

PROMPT = (
    "### Task\n"
    "Generate a SQL query to answer [QUESTION]{user_question}[/QUESTION]\n\n"
    "### Instructions\n"
    "{instructions}\n\n"
    "### Database Schema\n"
    "The query will run on a database with the following schema:\n"
    "{table_metadata_string}\n\n"
    "{previous_questions}"
    "### Answer\n"
    "Given the database schema, here is the SQL query that answers [QUESTION]{user_question}[/QUESTION]\n"
    "[SQL]\n"
)
PREVIOUS_QUESTIONS = (
    "### Previous Questions\n"
    "The question follows up on these earlier questions of the same conversation, oldest first, "
    "each with the SQL query that answered it:\n"
    "{turns}\n\n"
)
PUBLISHED_INSTRUCTION = (
    "- If you cannot answer the question with the available database schema, return 'I do not know'"
)


class SqlcoderLegacyTemplate(PromptTemplate):
    template_id = "sqlcoder-legacy"
    # Defog trained and evaluated SQLCoder on PostgreSQL (sql-eval is PostgreSQL based).
    native_dialect = "postgres"
    # The models close the answer with [/SQL]; some continue with a fence or a new ### section.
    default_stop = ["[/SQL]", "```", "\n###"]

    def render(self, prompt_input: PromptInput) -> RenderedPrompt:
        dialect = dialect_display_name(prompt_input.dialect)
        instructions = [
            PUBLISHED_INSTRUCTION,
            f"- The query will run on a {dialect} database; write it in {dialect} SQL.",
        ]
        if prompt_input.evidence:
            instructions += bullet_lines(prompt_input.evidence)
        if prompt_input.repair is not None:
            instructions += repair_bullets(prompt_input.repair)
        prompt = PROMPT.format(
            user_question=prompt_input.question.strip(),
            instructions="\n".join(instructions),
            table_metadata_string=prompt_input.schema_text.strip(),
            previous_questions=_previous_questions(prompt_input.history),
        )
        return RenderedPrompt(prompt=prompt)


def _previous_questions(history: list[HistoryTurn]) -> str:
    """The `### Previous Questions` section (with its trailing blank line), or "" without history."""
    if not history:
        return ""
    turns = "\n".join(
        f"[QUESTION]{turn.question.strip()}[/QUESTION]\n[SQL]\n{turn.sql.strip()}\n[/SQL]" for turn in history
    )
    return PREVIOUS_QUESTIONS.format(turns=turns)
