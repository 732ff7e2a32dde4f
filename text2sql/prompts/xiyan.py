"""`xiyan`: the prompt of XGenerationLab's XiYanSQL-QwenCoder models, one user message in Chinese.

The text is `nl2sqlite_template_cn` from the models' quickstart (XGenerationLab/XiYanSQL-QwenCoder
README, the same on the XiYanSQL-QwenCoder-7B-2504 model card), with the schema in M-Schema. The
model's chat template is applied by the engine. The message ends with an opened ```sql fence, and the
model answers with a fenced block of its own, so no stop sequence is set: a ``` stop would cut the
answer before it starts.

A conversation's earlier turns become a 【历史对话】 section in that one message, after 【参考信息】 and
before the closing 【用户问题】: each earlier question with the SQL that answered it in a ```sql fence (the
form the model answers in), oldest first. The models were fine-tuned on this single message; keeping the
schema, the evidence and the question in the message being answered keeps the prompt in that trained
form, where replayed chat turns would leave the schema turns behind and hand the model a follow-up
message it never saw. A repair still continues the chat after it. Without history the section is absent
and the message is the published one.
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

USER_PROMPT = (
    "你是一名{dialect}专家，现在需要阅读并理解下面的【数据库schema】描述，以及可能用到的【参考信息】，"
    "并运用{dialect}知识生成sql语句回答【用户问题】。\n"
    "【用户问题】\n"
    "{question}\n\n"
    "【数据库schema】\n"
    "{db_schema}\n\n"
    "【参考信息】\n"
    "{evidence}\n\n"
    "{history}"
    "【用户问题】\n"
    "{question}\n\n"
    "```sql"
)
# Our own section for a conversation's earlier turns, in the template's language and section style.
HISTORY_SECTION = (
    "【历史对话】\n"
    "【用户问题】是同一对话中下列问题的追问。以下按时间顺序列出之前的问题及回答它们的sql语句：\n"
    "{turns}\n\n"
)
# Our own follow-up after a failed attempt, written in the template's language and section style.
REPAIR_PROMPT = (
    "上面的sql语句执行失败。\n"
    "【错误信息】\n"
    "{error}\n\n"
    "{identifiers}"
    "请改正错误，重新运用{dialect}知识生成sql语句回答【用户问题】。\n"
    "【用户问题】\n"
    "{question}\n\n"
    "```sql"
)


class XiyanTemplate(PromptTemplate):
    template_id = "xiyan"
    schema_format = "mschema"
    # Trained for several dialects (the card names SQLite, PostgreSQL and MySQL): ask for the requested one.
    native_dialect = None
    default_stop = []

    def render(self, prompt_input: PromptInput) -> RenderedPrompt:
        dialect = dialect_display_name(prompt_input.dialect)
        question = prompt_input.question.strip()
        content = USER_PROMPT.format(
            dialect=dialect,
            question=question,
            db_schema=prompt_input.schema_text.strip(),
            evidence=(prompt_input.evidence or "").strip(),
            history=_history_section(prompt_input.history),
        )
        messages = [ChatMessage(role="user", content=content)]
        if prompt_input.repair is not None:
            messages += _repair_turns(prompt_input.repair, dialect=dialect, question=question)
        return RenderedPrompt(messages=messages)


def _history_section(history: list[HistoryTurn]) -> str:
    """The 【历史对话】 section (with its trailing blank line), or "" without history."""
    if not history:
        return ""
    turns = "\n".join(f"问题：{turn.question.strip()}\n```sql\n{turn.sql.strip()}\n```" for turn in history)
    return HISTORY_SECTION.format(turns=turns)


def _repair_turns(repair: RepairContext, *, dialect: str, question: str) -> list[ChatMessage]:
    """The failed answer as the assistant's fenced reply, then the error as the user's follow-up."""
    identifiers = ""
    if repair.valid_identifiers.strip():
        identifiers = f"【可用的表和列】\n{repair.valid_identifiers.strip()}\n\n"
    feedback = REPAIR_PROMPT.format(
        error=repair.error.strip(), identifiers=identifiers, dialect=dialect, question=question
    )
    return [
        ChatMessage(role="assistant", content=f"```sql\n{repair.sql.strip()}\n```"),
        ChatMessage(role="user", content=feedback),
    ]
