"""The plain-prompt baseline: the same served model asked once, with no pipeline around it.

One system line, one user turn with the database's CREATE TABLE text, the question and "Write one <dialect>
SQL query that answers the question. Return only the SQL."; greedy; the SQL taken out of a code fence if there
is one, and run read-only. It goes through the app's OpenAI endpoint, so both sides share the model, the
replica and the cores; only the pipeline differs.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from urllib.parse import unquote

import requests
from sqlalchemy.engine import make_url

from text2sql.dialects import dialect_display_name
from text2sql.execution import ExecutionError, execute_read_only
from text2sql.schema.introspect import introspect
from text2sql.schema.render import render_ddl

SYSTEM = "You are an expert SQL writer."
_FENCE = re.compile(r"```[A-Za-z]*\s*\n?(.*?)```", re.DOTALL)
_schema_texts: dict[str, str] = {}
_lock = threading.Lock()


def schema_text(url: str) -> str:
    """The database's own CREATE TABLE text (SQLite), else DDL rendered from introspection; cached per URL."""
    with _lock:
        if url in _schema_texts:
            return _schema_texts[url]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with sqlite3.connect(f"file:{unquote(parsed.database or '')}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL").fetchall()
        text = ";\n\n".join(r[0].strip() for r in rows) + ";"
    else:
        text = render_ddl(introspect(url, sample_values=0), samples=False)
    with _lock:
        _schema_texts[url] = text
    return text


def plain_messages(question: str, schema: str, *, dialect: str, evidence: str | None) -> list[dict[str, str]]:
    hint = f"\n\nHint: {evidence}" if evidence else ""
    user = (
        f"{schema}\n\nQuestion: {question}{hint}\n\n"
        f"Write one {dialect_display_name(dialect)} SQL query that answers the question. Return only the SQL."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def fenced_or_whole(reply: str) -> str:
    match = _FENCE.search(reply)
    return (match.group(1) if match else reply).strip().rstrip(";").strip()


def ask_plain(base_url: str, model: str, question: dict, url: str, *, max_tokens: int = 384) -> dict:
    """One question, answered the plain way; shaped like a /v1/sql/generate body for the scorer."""
    messages = plain_messages(
        question["question"], schema_text(url), dialect=question["dialect"], evidence=question["evidence"]
    )
    response = requests.post(
        f"{base_url}/v1/chat/completions",
        json={"model": model, "messages": messages, "temperature": 0, "max_tokens": max_tokens},
        timeout=900,
    )
    if response.status_code != 200:
        return {"status": response.status_code, "success": False, "error": response.text[:300], "sql": None}
    sql = fenced_or_whole(response.json()["choices"][0]["message"]["content"] or "")
    try:
        result = execute_read_only(url, sql, max_rows=20000, timeout_s=20)
    except (ExecutionError, ValueError) as e:
        return {"status": 200, "success": False, "error": str(e), "sql": sql, "attempts": [{}]}
    return {"status": 200, "success": True, "sql": sql, "columns": result.columns, "rows": result.rows, "attempts": [{}]}
