"""Prompt templates: the exact text each model family sees, pinned, plus the registry.

The expected strings follow the published formats (see each template module's docstring); a change
here changes what fine-tuned models are served with, so it must be deliberate.
"""

from __future__ import annotations

import pytest

from text2sql.prompts import TEMPLATE_IDS, ChatMessage, HistoryTurn, PromptInput, RepairContext, get_template
from text2sql.prompts.base import PromptTemplate

QUESTION = "How many albums does AC/DC have?"
DDL = "CREATE TABLE Artist (\n  ArtistId INTEGER PRIMARY KEY,\n  Name NVARCHAR(120)\n);"
MSCHEMA = (
    "【DB_ID】 chinook\n【Schema】\n# Table: Artist\n[\n(ArtistId:INTEGER, Primary Key),\n(Name:NVARCHAR)\n]"
)
EVIDENCE = "AC/DC is the artist's Name."
REPAIR = RepairContext(
    sql="SELECT COUNT(*) FROM Albums",
    error="no such table: Albums",
    valid_identifiers="Artist: ArtistId, Name",
)

# A conversation over the same one-table schema: the earlier turns, oldest first, and follow-ups to them.
STARTS_WITH_A = HistoryTurn(
    question="List the artists whose name starts with A.", sql="SELECT Name FROM Artist WHERE Name LIKE 'A%'"
)
HOW_MANY = HistoryTurn(
    question="How many of them are there?", sql="SELECT COUNT(*) FROM Artist WHERE Name LIKE 'A%'"
)
FOLLOW_UP = HOW_MANY.question
SECOND_FOLLOW_UP = "and the ones starting with B?"
FOLLOW_UP_REPAIR = RepairContext(
    sql="SELECT COUNT(*) FROM Artists WHERE Name LIKE 'B%'",
    error="no such table: Artists",
    valid_identifiers="Artist: ArtistId, Name",
)


def example(template_id: str, **changes: object) -> PromptInput:
    schema_text = MSCHEMA if get_template(template_id).schema_format == "mschema" else DDL
    values: dict[str, object] = {
        "question": QUESTION,
        "schema_text": schema_text,
        "dialect": "postgres",
        "evidence": EVIDENCE,
    }
    values.update(changes)
    return PromptInput(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Exact renders


def test_qwen_chat_exact() -> None:
    rendered = get_template("qwen-chat").render(example("qwen-chat"))
    assert rendered.prompt is None
    assert rendered.messages == [
        ChatMessage(
            role="system",
            content=(
                "You are an expert data analyst who writes PostgreSQL SQL. Answer the user's question with "
                "exactly one read-only PostgreSQL SQL query that uses only the tables and columns in the "
                "given schema. Reply with the SQL query only, without explanation."
            ),
        ),
        ChatMessage(
            role="user",
            content=(
                "Database schema:\n"
                "CREATE TABLE Artist (\n  ArtistId INTEGER PRIMARY KEY,\n  Name NVARCHAR(120)\n);\n\n"
                "Hint: AC/DC is the artist's Name.\n\n"
                "Question: How many albums does AC/DC have?"
            ),
        ),
    ]


def test_sqlcoder_llama3_exact() -> None:
    rendered = get_template("sqlcoder-llama3").render(example("sqlcoder-llama3"))
    assert rendered.messages is None
    assert rendered.prompt == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        "Generate a SQL query to answer this question: `How many albums does AC/DC have?`\n"
        "- Write the query in PostgreSQL SQL.\n"
        "- AC/DC is the artist's Name.\n\n"
        "DDL statements:\n"
        "CREATE TABLE Artist (\n  ArtistId INTEGER PRIMARY KEY,\n  Name NVARCHAR(120)\n);"
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        "The following SQL query best answers the question `How many albums does AC/DC have?`:\n"
        "```sql\n"
    )


def test_sqlcoder_legacy_exact() -> None:
    rendered = get_template("sqlcoder-legacy").render(example("sqlcoder-legacy"))
    assert rendered.messages is None
    assert rendered.prompt == (
        "### Task\n"
        "Generate a SQL query to answer [QUESTION]How many albums does AC/DC have?[/QUESTION]\n\n"
        "### Instructions\n"
        "- If you cannot answer the question with the available database schema, return 'I do not know'\n"
        "- The query will run on a PostgreSQL database; write it in PostgreSQL SQL.\n"
        "- AC/DC is the artist's Name.\n\n"
        "### Database Schema\n"
        "The query will run on a database with the following schema:\n"
        "CREATE TABLE Artist (\n  ArtistId INTEGER PRIMARY KEY,\n  Name NVARCHAR(120)\n);\n\n"
        "### Answer\n"
        "Given the database schema, here is the SQL query that answers "
        "[QUESTION]How many albums does AC/DC have?[/QUESTION]\n"
        "[SQL]\n"
    )


def test_xiyan_exact() -> None:
    rendered = get_template("xiyan").render(example("xiyan"))
    assert rendered.prompt is None
    assert rendered.messages == [
        ChatMessage(
            role="user",
            content=(
                "你是一名PostgreSQL专家，现在需要阅读并理解下面的【数据库schema】描述，以及可能用到的【参考信息】，"
                "并运用PostgreSQL知识生成sql语句回答【用户问题】。\n"
                "【用户问题】\n"
                "How many albums does AC/DC have?\n\n"
                "【数据库schema】\n"
                "【DB_ID】 chinook\n【Schema】\n# Table: Artist\n[\n(ArtistId:INTEGER, Primary Key),\n(Name:NVARCHAR)\n]\n\n"
                "【参考信息】\n"
                "AC/DC is the artist's Name.\n\n"
                "【用户问题】\n"
                "How many albums does AC/DC have?\n\n"
                "```sql"
            ),
        )
    ]


def test_xiyan_keeps_an_empty_evidence_section() -> None:
    """The published template always has 【参考信息】; without evidence it stays, empty."""
    [message] = get_template("xiyan").render(example("xiyan", evidence=None)).messages or []
    assert "【参考信息】\n\n\n【用户问题】" in message.content


# --------------------------------------------------------------------------------------------------
# Evidence and dialect reach every template


def rendered_text(template_id: str, prompt_input: PromptInput) -> str:
    rendered = get_template(template_id).render(prompt_input)
    if rendered.prompt is not None:
        return rendered.prompt
    return "\n".join(m.content for m in rendered.messages or [])


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
@pytest.mark.parametrize(
    ("dialect", "display"), [("sqlite", "SQLite"), ("mysql", "MySQL"), ("duckdb", "DuckDB")]
)
def test_dialect_reaches_every_template(template_id: str, dialect: str, display: str) -> None:
    text = rendered_text(template_id, example(template_id, dialect=dialect))
    assert display in text
    assert "PostgreSQL" not in text


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_evidence_reaches_every_template(template_id: str) -> None:
    evidence = "Revenue means UnitPrice * Quantity."
    assert evidence in rendered_text(template_id, example(template_id, evidence=evidence))
    assert evidence not in rendered_text(template_id, example(template_id, evidence=None))


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_question_and_schema_reach_every_template(template_id: str) -> None:
    prompt_input = example(template_id)
    text = rendered_text(template_id, prompt_input)
    assert QUESTION in text
    assert prompt_input.schema_text in text


@pytest.mark.parametrize("template_id", ["sqlcoder-llama3", "sqlcoder-legacy"])
def test_multi_line_evidence_becomes_bullets(template_id: str) -> None:
    text = rendered_text(template_id, example(template_id, evidence="Rule one.\n\n- Rule two."))
    assert "\n- Rule one.\n- Rule two.\n" in text


# --------------------------------------------------------------------------------------------------
# Repair


def test_qwen_chat_repair_turns() -> None:
    messages = get_template("qwen-chat").render(example("qwen-chat", repair=REPAIR)).messages or []
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2].content == "SELECT COUNT(*) FROM Albums"
    assert messages[3].content == (
        "That query failed: no such table: Albums\n\n"
        "The valid tables and columns are:\nArtist: ArtistId, Name\n\n"
        "Write a corrected PostgreSQL SQL query. Reply with the SQL query only."
    )


def test_sqlcoder_llama3_repair_sits_in_the_instructions() -> None:
    prompt = get_template("sqlcoder-llama3").render(example("sqlcoder-llama3", repair=REPAIR)).prompt or ""
    assert (
        "Generate a SQL query to answer this question: `How many albums does AC/DC have?`\n"
        "- Write the query in PostgreSQL SQL.\n"
        "- AC/DC is the artist's Name.\n"
        "- This query was tried before and failed:\nSELECT COUNT(*) FROM Albums\n"
        "- Error: no such table: Albums\n"
        "- The valid tables and columns are:\nArtist: ArtistId, Name\n"
        "- Write a corrected query that does not repeat this error.\n\n"
        "DDL statements:\n"
    ) in prompt
    assert prompt.endswith("best answers the question `How many albums does AC/DC have?`:\n```sql\n")


def test_sqlcoder_legacy_repair_sits_in_the_instructions() -> None:
    prompt = get_template("sqlcoder-legacy").render(example("sqlcoder-legacy", repair=REPAIR)).prompt or ""
    assert (
        "### Instructions\n"
        "- If you cannot answer the question with the available database schema, return 'I do not know'\n"
        "- The query will run on a PostgreSQL database; write it in PostgreSQL SQL.\n"
        "- AC/DC is the artist's Name.\n"
        "- This query was tried before and failed:\nSELECT COUNT(*) FROM Albums\n"
        "- Error: no such table: Albums\n"
        "- The valid tables and columns are:\nArtist: ArtistId, Name\n"
        "- Write a corrected query that does not repeat this error.\n\n"
        "### Database Schema\n"
    ) in prompt
    assert prompt.endswith("[/QUESTION]\n[SQL]\n")


def test_xiyan_repair_turns() -> None:
    messages = get_template("xiyan").render(example("xiyan", repair=REPAIR)).messages or []
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    assert messages[1].content == "```sql\nSELECT COUNT(*) FROM Albums\n```"
    assert messages[2].content == (
        "上面的sql语句执行失败。\n"
        "【错误信息】\n"
        "no such table: Albums\n\n"
        "【可用的表和列】\n"
        "Artist: ArtistId, Name\n\n"
        "请改正错误，重新运用PostgreSQL知识生成sql语句回答【用户问题】。\n"
        "【用户问题】\n"
        "How many albums does AC/DC have?\n\n"
        "```sql"
    )


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_repair_without_identifiers_omits_that_part(template_id: str) -> None:
    repair = REPAIR.model_copy(update={"valid_identifiers": ""})
    text = rendered_text(template_id, example(template_id, repair=repair))
    assert "SELECT COUNT(*) FROM Albums" in text and "no such table: Albums" in text
    assert "Artist: ArtistId, Name" not in text


# --------------------------------------------------------------------------------------------------
# Conversations: earlier turns (history), each template in its own way


def test_qwen_chat_history_exact() -> None:
    """Earlier turns are replayed as chat: schema + first question, its SQL, then the follow-up with the hint."""
    rendered = get_template("qwen-chat").render(
        example("qwen-chat", question=FOLLOW_UP, history=[STARTS_WITH_A])
    )
    assert rendered.prompt is None
    assert rendered.messages == [
        ChatMessage(
            role="system",
            content=(
                "You are an expert data analyst who writes PostgreSQL SQL. Answer the user's question with "
                "exactly one read-only PostgreSQL SQL query that uses only the tables and columns in the "
                "given schema. Reply with the SQL query only, without explanation."
            ),
        ),
        ChatMessage(
            role="user",
            content=(
                "Database schema:\n"
                "CREATE TABLE Artist (\n  ArtistId INTEGER PRIMARY KEY,\n  Name NVARCHAR(120)\n);\n\n"
                "Question: List the artists whose name starts with A."
            ),
        ),
        ChatMessage(role="assistant", content="SELECT Name FROM Artist WHERE Name LIKE 'A%'"),
        ChatMessage(
            role="user",
            content="Hint: AC/DC is the artist's Name.\n\nQuestion: How many of them are there?",
        ),
    ]


def test_qwen_chat_puts_a_follow_up_as_an_edit_of_the_previous_sql_only_when_asked() -> None:
    template = get_template("qwen-chat")
    edited = template.render(example("qwen-chat", question=FOLLOW_UP, history=[STARTS_WITH_A], followup_edit=True))
    plain = template.render(example("qwen-chat", question=FOLLOW_UP, history=[STARTS_WITH_A]))
    # Only the last user turn changes, so the cached chat before it is the same.
    assert edited.messages[:-1] == plain.messages[:-1]
    assert edited.messages[-1].content == (
        "Hint: AC/DC is the artist's Name.\n\nQuestion: How many of them are there?\n\n"
        "Change the previous SQL query to answer this follow-up. Keep its tables, conditions, grouping, order and "
        "limit unless the follow-up changes them."
    )
    # A first question has no previous SQL: nothing is added.
    first = template.render(example("qwen-chat", followup_edit=True))
    assert first == template.render(example("qwen-chat"))


def test_sqlcoder_llama3_history_exact() -> None:
    rendered = get_template("sqlcoder-llama3").render(
        example("sqlcoder-llama3", question=FOLLOW_UP, history=[STARTS_WITH_A])
    )
    assert rendered.messages is None
    assert rendered.prompt == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        "Generate a SQL query to answer this question: `How many of them are there?`\n"
        "- Write the query in PostgreSQL SQL.\n"
        "- This question follows up on earlier questions of the same conversation; answer it in their context.\n"
        "- Earlier question `List the artists whose name starts with A.` was answered with:\n"
        "SELECT Name FROM Artist WHERE Name LIKE 'A%'\n"
        "- AC/DC is the artist's Name.\n\n"
        "DDL statements:\n"
        "CREATE TABLE Artist (\n  ArtistId INTEGER PRIMARY KEY,\n  Name NVARCHAR(120)\n);"
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        "The following SQL query best answers the question `How many of them are there?`:\n"
        "```sql\n"
    )


def test_sqlcoder_legacy_history_exact() -> None:
    rendered = get_template("sqlcoder-legacy").render(
        example("sqlcoder-legacy", question=FOLLOW_UP, history=[STARTS_WITH_A])
    )
    assert rendered.messages is None
    assert rendered.prompt == (
        "### Task\n"
        "Generate a SQL query to answer [QUESTION]How many of them are there?[/QUESTION]\n\n"
        "### Instructions\n"
        "- If you cannot answer the question with the available database schema, return 'I do not know'\n"
        "- The query will run on a PostgreSQL database; write it in PostgreSQL SQL.\n"
        "- AC/DC is the artist's Name.\n\n"
        "### Database Schema\n"
        "The query will run on a database with the following schema:\n"
        "CREATE TABLE Artist (\n  ArtistId INTEGER PRIMARY KEY,\n  Name NVARCHAR(120)\n);\n\n"
        "### Previous Questions\n"
        "The question follows up on these earlier questions of the same conversation, oldest first, "
        "each with the SQL query that answered it:\n"
        "[QUESTION]List the artists whose name starts with A.[/QUESTION]\n"
        "[SQL]\n"
        "SELECT Name FROM Artist WHERE Name LIKE 'A%'\n"
        "[/SQL]\n\n"
        "### Answer\n"
        "Given the database schema, here is the SQL query that answers "
        "[QUESTION]How many of them are there?[/QUESTION]\n"
        "[SQL]\n"
    )


def test_xiyan_history_exact() -> None:
    rendered = get_template("xiyan").render(example("xiyan", question=FOLLOW_UP, history=[STARTS_WITH_A]))
    assert rendered.prompt is None
    assert rendered.messages == [
        ChatMessage(
            role="user",
            content=(
                "你是一名PostgreSQL专家，现在需要阅读并理解下面的【数据库schema】描述，以及可能用到的【参考信息】，"
                "并运用PostgreSQL知识生成sql语句回答【用户问题】。\n"
                "【用户问题】\n"
                "How many of them are there?\n\n"
                "【数据库schema】\n"
                "【DB_ID】 chinook\n【Schema】\n# Table: Artist\n[\n(ArtistId:INTEGER, Primary Key),\n(Name:NVARCHAR)\n]\n\n"
                "【参考信息】\n"
                "AC/DC is the artist's Name.\n\n"
                "【历史对话】\n"
                "【用户问题】是同一对话中下列问题的追问。以下按时间顺序列出之前的问题及回答它们的sql语句：\n"
                "问题：List the artists whose name starts with A.\n"
                "```sql\n"
                "SELECT Name FROM Artist WHERE Name LIKE 'A%'\n"
                "```\n\n"
                "【用户问题】\n"
                "How many of them are there?\n\n"
                "```sql"
            ),
        )
    ]


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_empty_history_changes_nothing(template_id: str) -> None:
    template = get_template(template_id)
    assert template.render(example(template_id, history=[])) == template.render(example(template_id))


@pytest.mark.parametrize("template_id", TEMPLATE_IDS)
def test_history_reaches_every_template_oldest_first(template_id: str) -> None:
    text = rendered_text(
        template_id, example(template_id, question=SECOND_FOLLOW_UP, history=[STARTS_WITH_A, HOW_MANY])
    )
    positions = [
        text.index(STARTS_WITH_A.question),
        text.index(STARTS_WITH_A.sql),
        text.index(HOW_MANY.question),
        text.index(HOW_MANY.sql),
    ]
    assert positions == sorted(positions)
    # The answer is asked for the current question, and it comes after every earlier turn.
    assert text.rindex(SECOND_FOLLOW_UP) > positions[-1]


def test_qwen_chat_history_then_repair() -> None:
    """Earlier turns, then the current question, then the failed attempt and its error: one coherent chat."""
    messages = (
        get_template("qwen-chat")
        .render(
            example(
                "qwen-chat",
                question=SECOND_FOLLOW_UP,
                evidence=None,
                history=[STARTS_WITH_A, HOW_MANY],
                repair=FOLLOW_UP_REPAIR,
            )
        )
        .messages
        or []
    )
    assert [(m.role, m.content) for m in messages[1:]] == [
        (
            "user",
            "Database schema:\n"
            "CREATE TABLE Artist (\n  ArtistId INTEGER PRIMARY KEY,\n  Name NVARCHAR(120)\n);\n\n"
            "Question: List the artists whose name starts with A.",
        ),
        ("assistant", "SELECT Name FROM Artist WHERE Name LIKE 'A%'"),
        ("user", "Question: How many of them are there?"),
        ("assistant", "SELECT COUNT(*) FROM Artist WHERE Name LIKE 'A%'"),
        ("user", "Question: and the ones starting with B?"),
        ("assistant", "SELECT COUNT(*) FROM Artists WHERE Name LIKE 'B%'"),
        (
            "user",
            "That query failed: no such table: Artists\n\n"
            "The valid tables and columns are:\nArtist: ArtistId, Name\n\n"
            "Write a corrected PostgreSQL SQL query. Reply with the SQL query only.",
        ),
    ]


def test_sqlcoder_llama3_history_then_repair_in_the_instructions() -> None:
    prompt = (
        get_template("sqlcoder-llama3")
        .render(
            example(
                "sqlcoder-llama3",
                question=SECOND_FOLLOW_UP,
                history=[STARTS_WITH_A, HOW_MANY],
                repair=FOLLOW_UP_REPAIR,
            )
        )
        .prompt
        or ""
    )
    assert (
        "Generate a SQL query to answer this question: `and the ones starting with B?`\n"
        "- Write the query in PostgreSQL SQL.\n"
        "- This question follows up on earlier questions of the same conversation; answer it in their context.\n"
        "- Earlier question `List the artists whose name starts with A.` was answered with:\n"
        "SELECT Name FROM Artist WHERE Name LIKE 'A%'\n"
        "- Earlier question `How many of them are there?` was answered with:\n"
        "SELECT COUNT(*) FROM Artist WHERE Name LIKE 'A%'\n"
        "- AC/DC is the artist's Name.\n"
        "- This query was tried before and failed:\nSELECT COUNT(*) FROM Artists WHERE Name LIKE 'B%'\n"
        "- Error: no such table: Artists\n"
        "- The valid tables and columns are:\nArtist: ArtistId, Name\n"
        "- Write a corrected query that does not repeat this error.\n\n"
        "DDL statements:\n"
    ) in prompt
    assert prompt.endswith("best answers the question `and the ones starting with B?`:\n```sql\n")


def test_sqlcoder_legacy_history_section_and_repair_instructions() -> None:
    prompt = (
        get_template("sqlcoder-legacy")
        .render(
            example(
                "sqlcoder-legacy",
                question=SECOND_FOLLOW_UP,
                history=[STARTS_WITH_A, HOW_MANY],
                repair=FOLLOW_UP_REPAIR,
            )
        )
        .prompt
        or ""
    )
    assert (
        "- AC/DC is the artist's Name.\n"
        "- This query was tried before and failed:\nSELECT COUNT(*) FROM Artists WHERE Name LIKE 'B%'\n"
        "- Error: no such table: Artists\n"
        "- The valid tables and columns are:\nArtist: ArtistId, Name\n"
        "- Write a corrected query that does not repeat this error.\n\n"
        "### Database Schema\n"
    ) in prompt
    assert prompt.endswith(
        ");\n\n"
        "### Previous Questions\n"
        "The question follows up on these earlier questions of the same conversation, oldest first, "
        "each with the SQL query that answered it:\n"
        "[QUESTION]List the artists whose name starts with A.[/QUESTION]\n"
        "[SQL]\nSELECT Name FROM Artist WHERE Name LIKE 'A%'\n[/SQL]\n"
        "[QUESTION]How many of them are there?[/QUESTION]\n"
        "[SQL]\nSELECT COUNT(*) FROM Artist WHERE Name LIKE 'A%'\n[/SQL]\n\n"
        "### Answer\n"
        "Given the database schema, here is the SQL query that answers "
        "[QUESTION]and the ones starting with B?[/QUESTION]\n"
        "[SQL]\n"
    )


def test_xiyan_history_section_then_repair_turns() -> None:
    messages = (
        get_template("xiyan")
        .render(
            example("xiyan", question=SECOND_FOLLOW_UP, history=[STARTS_WITH_A, HOW_MANY], repair=FOLLOW_UP_REPAIR)
        )
        .messages
        or []
    )
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    assert messages[0].content.endswith(
        "【历史对话】\n"
        "【用户问题】是同一对话中下列问题的追问。以下按时间顺序列出之前的问题及回答它们的sql语句：\n"
        "问题：List the artists whose name starts with A.\n"
        "```sql\nSELECT Name FROM Artist WHERE Name LIKE 'A%'\n```\n"
        "问题：How many of them are there?\n"
        "```sql\nSELECT COUNT(*) FROM Artist WHERE Name LIKE 'A%'\n```\n\n"
        "【用户问题】\n"
        "and the ones starting with B?\n\n"
        "```sql"
    )
    assert messages[1].content == "```sql\nSELECT COUNT(*) FROM Artists WHERE Name LIKE 'B%'\n```"
    # The repair asks again for the current question, not an earlier one.
    assert messages[2].content.endswith("【用户问题】\nand the ones starting with B?\n\n```sql")
    assert "【历史对话】" not in messages[2].content


# --------------------------------------------------------------------------------------------------
# Class attributes and the registry


def test_template_attributes() -> None:
    expected = {
        "qwen-chat": ("ddl", None, []),
        "sqlcoder-llama3": ("ddl", "postgres", ["```", "<|eot_id|>"]),
        "sqlcoder-legacy": ("ddl", "postgres", ["[/SQL]", "```", "\n###"]),
        "xiyan": ("mschema", None, []),
    }
    for template_id, (schema_format, native_dialect, stop) in expected.items():
        template = get_template(template_id)
        assert (template.schema_format, template.native_dialect, template.default_stop) == (
            schema_format,
            native_dialect,
            stop,
        ), template_id


def test_base_defaults() -> None:
    assert PromptTemplate.native_dialect is None
    assert PromptTemplate.default_stop == []
    assert PromptTemplate.schema_format == "ddl"


def test_registry_lists_all_templates() -> None:
    assert TEMPLATE_IDS == ("qwen-chat", "sqlcoder-legacy", "sqlcoder-llama3", "xiyan")
    for template_id in TEMPLATE_IDS:
        assert get_template(template_id).template_id == template_id


def test_registry_rejects_unknown_id_listing_known_ones() -> None:
    with pytest.raises(ValueError) as excinfo:
        get_template("sqlcoder-9000")
    message = str(excinfo.value)
    assert "'sqlcoder-9000'" in message
    assert "qwen-chat, sqlcoder-legacy, sqlcoder-llama3, xiyan" in message
