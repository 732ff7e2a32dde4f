"""`sqlcoder-llama3`: the prompt of defog's llama-3-sqlcoder-8b, a raw Llama-3 chat-formatted completion.

The format is the model card's (huggingface.co/defog/llama-3-sqlcoder-8b, "Prompt"): the user turn asks
for the query, the `{instructions}` slot follows the question, then the DDL; the assistant turn is
opened by us and ends inside a ```sql fence, so the model continues with the SQL and closes the fence.
Our instructions are bullets: the dialect, then the earlier turns of a conversation, then the evidence,
then a failed attempt when repairing.

Earlier turns go into the instructions, not into earlier user/assistant exchanges. The published prompt is
one user turn whose `{instructions}` slot is defog's documented place for per-question context (sql-eval's
prompts/README.md), and the model was fine-tuned on that single turn with the DDL in it: replayed exchanges
would move the DDL away from the question being answered and show the model a shape it never saw. As
bullets, each earlier question (in backticks, as the card quotes questions) with the SQL that answered it,
oldest first, the prompt keeps its trained form, and a repair still follows as the last bullets.
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
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    "Generate a SQL query to answer this question: `{user_question}`\n"
    "{instructions}\n\n"
    "DDL statements:\n"
    "{create_table_statements}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    "The following SQL query best answers the question `{user_question}`:\n"
    "```sql\n"
)


class SqlcoderLlama3Template(PromptTemplate):
    template_id = "sqlcoder-llama3"
    # Defog trained and evaluated SQLCoder on PostgreSQL (sql-eval is PostgreSQL based).
    native_dialect = "postgres"
    default_stop = ["```", "<|eot_id|>"]

    def render(self, prompt_input: PromptInput) -> RenderedPrompt:
        question = prompt_input.question.strip()
        instructions = [f"- Write the query in {dialect_display_name(prompt_input.dialect)} SQL."]
        if prompt_input.history:
            instructions += _history_bullets(prompt_input.history)
        if prompt_input.evidence:
            instructions += bullet_lines(prompt_input.evidence)
        if prompt_input.repair is not None:
            instructions += repair_bullets(prompt_input.repair)
        prompt = PROMPT.format(
            user_question=question,
            instructions="\n".join(instructions),
            create_table_statements=prompt_input.schema_text.strip(),
        )
        return RenderedPrompt(prompt=prompt)


def _history_bullets(history: list[HistoryTurn]) -> list[str]:
    """The earlier questions of the conversation and the SQL that answered each, oldest first."""
    lines = ["- This question follows up on earlier questions of the same conversation; answer it in their context."]
    for turn in history:
        lines.append(f"- Earlier question `{turn.question.strip()}` was answered with:\n{turn.sql.strip()}")
    return lines
