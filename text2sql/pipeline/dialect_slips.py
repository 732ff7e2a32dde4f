"""Functions a model borrowed from another SQL dialect, rewritten into the one it was asked to write.

Small models write MySQL's CURDATE() or YEAR(d) for SQLite and PostgreSQL. The validator's allow-list refuses
those (rightly: the database has no such function), and a re-prompt that names the function rarely helps, as
the model writes it again. This rewrites only the offending calls, never the rest of the statement (reading a
whole SQLite query as MySQL would turn its "quoted" names into strings):

- a call the dialect does not know (`exp.Anonymous`) is read on its own as MySQL, T-SQL, PostgreSQL, Oracle
  and SQLite in turn; the first that knows it (CURDATE -> CurrentDate) gives the expression sqlglot writes
  back in the target dialect (CURRENT_DATE);
- SQLite has no YEAR/MONTH/DAY and sqlglot writes them unchanged, so there they become
  CAST(STRFTIME('%Y', d) AS INTEGER).

The caller validates the result again: this proposes text, the allow-list still decides.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from text2sql.dialects import dialect_display_name
from text2sql.sql_functions import is_allowed_function

# Where borrowed functions come from, most common first in small models' output.
SOURCE_DIALECTS = ("mysql", "tsql", "postgres", "oracle", "sqlite")
_SQLITE_DATE_PARTS = {exp.Year: "%Y", exp.Month: "%m", exp.Day: "%d"}


def rewrite_foreign_functions(sql: str, *, dialect: str) -> tuple[str, list[str]] | None:
    """The statement with borrowed functions rewritten, and a note per rewrite; None when nothing changed."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (SqlglotError, RecursionError):
        return None
    notes: list[str] = []
    for call in list(tree.find_all(exp.Anonymous)):
        if is_allowed_function(call.name, dialect):
            continue
        borrowed = _known_elsewhere(call, dialect)
        if borrowed is not None:
            source, replacement = borrowed
            notes.append(_note(call, replacement, dialect, f"{dialect_display_name(source)}'s"))
            call.replace(replacement)
    if dialect == "sqlite":
        for part, pattern in _SQLITE_DATE_PARTS.items():
            for call in list(tree.find_all(part)):
                replacement = exp.cast(
                    exp.Anonymous(this="STRFTIME", expressions=[exp.Literal.string(pattern), call.this]), "INTEGER"
                )
                notes.append(_note(call, replacement, dialect, "not SQLite's"))
                call.replace(replacement)
    if not notes:
        return None
    return tree.sql(dialect=dialect), notes


def _known_elsewhere(call: exp.Anonymous, dialect: str) -> tuple[str, exp.Expression] | None:
    text = call.sql(dialect=dialect)
    for source in SOURCE_DIALECTS:
        if source == dialect:
            continue
        try:
            parsed = sqlglot.parse_one(text, read=source)
        except (SqlglotError, RecursionError):
            continue
        if isinstance(parsed, exp.Func) and not isinstance(parsed, exp.Anonymous):
            return source, parsed
    return None


def _note(call: exp.Expression, replacement: exp.Expression, dialect: str, origin: str) -> str:
    return f"{call.sql(dialect=dialect)} ({origin}) -> {replacement.sql(dialect=dialect)}"
