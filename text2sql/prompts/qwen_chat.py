"""`qwen-chat`: the default template, for instruction-tuned chat models such as Qwen2.5-Coder-Instruct.

It asks for the SQL alone; the extractor still copes with fences and prose, as small models add them.

A conversation is replayed as the chat it was: the first user turn carries the schema and the first
question, each earlier SQL is the assistant's turn, and each later question is a user turn of its own.
The current question (with the request's hint, which belongs to it) is the last user turn, and a repair
continues the chat after it. Without history this is one user turn, exactly as before.
"""

from __future__ import annotations

from text2sql.dialects import dialect_display_name
from text2sql.prompts.base import (
    ChatMessage,
    HistoryTurn,
    PromptInput,
    PromptTemplate,
    RenderedPrompt,
    RepairContext,
)

SYSTEM_PROMPT = (
    "You are an expert data analyst who writes {dialect} SQL. "
    "Answer the user's question with exactly one read-only {dialect} SQL query that uses only "
    "the tables and columns in the given schema. Reply with the SQL query only, without explanation."
)

# Small models answer a terse follow-up ("only the ones in Canada") as if it were the first question and drop the
# earlier conditions; put as an edit of the previous query, they keep them.
FOLLOWUP_EDIT = (
    "Change the previous SQL query to answer this follow-up. Keep its tables, conditions, grouping, order and limit "
    "unless the follow-up changes them."
)

# After the schema, so the cached schema prefix is the same for Chinese and English questions.
CHINESE_QUESTION_NOTE = (
    "注意：问题是中文的，而数据库的表名、列名和值都是英文的。请按含义把问题中的词语对应到上面schema中的表和列，"
    "只使用schema中的名称，字符串值按数据库中的英文写法书写。"
)


class QwenChatTemplate(PromptTemplate):
    template_id = "qwen-chat"
    # Instruction-tuned general coders write any common dialect; transpiling would only add a failure mode.
    native_dialect = None
    # Chat form: the engine stops at the model's end-of-turn token.
    default_stop = []

    def render(self, prompt_input: PromptInput) -> RenderedPrompt:
        dialect = dialect_display_name(prompt_input.dialect)
        schema = f"Database schema:\n{prompt_input.schema_text.strip()}"
        current = []
        if prompt_input.examples:
            current.append(examples_section(prompt_input.examples))
        if prompt_input.value_matches:
            current.append("Values in the database that the question mentions: " + "; ".join(prompt_input.value_matches))
        if prompt_input.glosses:
            current.append("Schema names the question's words mean: " + "; ".join(prompt_input.glosses))
        if prompt_input.evidence:
            current.append(f"Hint: {prompt_input.evidence.strip()}")
        if prompt_input.chinese_question:
            current.append(CHINESE_QUESTION_NOTE)
        current.append(f"Question: {prompt_input.question.strip()}")
        if prompt_input.history and prompt_input.followup_edit:
            current.append(FOLLOWUP_EDIT)
        messages = [ChatMessage(role="system", content=SYSTEM_PROMPT.format(dialect=dialect))]
        if prompt_input.history:
            messages += _history_turns(prompt_input.history, schema=schema)
            messages.append(ChatMessage(role="user", content="\n\n".join(current)))
        else:
            messages.append(ChatMessage(role="user", content="\n\n".join([schema, *current])))
        if prompt_input.repair is not None:
            messages += _repair_turns(prompt_input.repair, dialect)
        return RenderedPrompt(messages=messages)


def examples_section(examples) -> str:
    """Worked examples, after the schema so that the schema prefix is the same for every question."""
    pairs = "\n\n".join(f"Question: {e.question.strip()}\nSQL: {e.sql.strip()}" for e in examples)
    return f"Examples of questions and their SQL (on other tables; use only the schema above):\n{pairs}"


def _history_turns(history: list[HistoryTurn], *, schema: str) -> list[ChatMessage]:
    """Earlier questions as user turns (the first one with the schema) and their SQL as the assistant's."""
    messages = []
    for index, turn in enumerate(history):
        question = f"Question: {turn.question.strip()}"
        messages += [
            ChatMessage(role="user", content=f"{schema}\n\n{question}" if index == 0 else question),
            ChatMessage(role="assistant", content=turn.sql.strip()),
        ]
    return messages


def _repair_turns(repair: RepairContext, dialect: str) -> list[ChatMessage]:
    """The failed answer as the assistant's turn, then the error as the user's follow-up."""
    feedback = [f"That query failed: {repair.error.strip()}"]
    if repair.valid_identifiers:
        feedback.append(f"The valid tables and columns are:\n{repair.valid_identifiers.strip()}")
    feedback.append(f"Write a corrected {dialect} SQL query. Reply with the SQL query only.")
    return [ChatMessage(role="assistant", content=repair.sql), ChatMessage(role="user", content="\n\n".join(feedback))]
