"""A pg_dump file read as text: SQL chunks and COPY blocks, statements, the housekeeping to skip, COPY fields."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlglot
from sqlglot.dialects.postgres import Postgres

logger = logging.getLogger(__name__)

_COPY_LINE = re.compile(
    r"^COPY\s+(?P<table>[^\s(]+)\s*(?:\((?P<columns>[^)]*)\))?\s+FROM\s+stdin\b[^;]*;\s*$", re.IGNORECASE
)


@dataclass
class CopyBlock:
    table: str  # as written, e.g. public.author (quotes removed)
    columns: list[str] | None
    lines: list[str] = field(default_factory=list)  # raw text-format rows


def split_dump(text: str) -> Iterator[str | CopyBlock]:
    """SQL text chunks and COPY blocks, in order; psql meta-commands (lines starting with a backslash) dropped."""
    buffer: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        match = _COPY_LINE.match(line)
        if match:
            if buffer:
                yield "\n".join(buffer)
                buffer = []
            columns = match.group("columns")
            block = CopyBlock(
                match.group("table").replace('"', ""),
                [c.strip().strip('"') for c in columns.split(",")] if columns else None,
            )
            for row in lines:
                if row == "\\.":
                    break
                block.lines.append(row)
            else:
                raise ValueError(f"COPY {block.table} FROM stdin has no terminating \\. line")
            yield block
        elif line.startswith("\\"):
            logger.debug("skipping psql meta-command %s", line.split()[0])
        else:
            buffer.append(line)
    if buffer:
        yield "\n".join(buffer)


def split_statements(chunk: str) -> list[str]:
    """Statements of a SQL chunk, split at top-level semicolons (strings, comments, $$ bodies respected)."""
    tokens = Postgres().tokenize(chunk)
    pieces, start = [], 0
    for token in tokens:
        if token.token_type == sqlglot.TokenType.SEMICOLON:
            pieces.append(chunk[start : token.start])
            start = token.end + 1
    pieces.append(chunk[start:])
    return [p.strip() for p in pieces if strip_comments(p).strip()]


def strip_comments(text: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.DOTALL)


# pg_dump's housekeeping: statements that matter only to a PostgreSQL server, skipped for SQLite.
HOUSEKEEPING = re.compile(
    r"""^(?:
        SET\b | RESET\b
      | SELECT\s+pg_catalog\. | SELECT\s+(?:pg_catalog\.)?setval\s*\(
      | ALTER\b.*\bOWNER\s+TO\b
      | (?:CREATE|ALTER|DROP)\s+SEQUENCE\b
      | ALTER\s+TABLE\b.*\bALTER\s+COLUMN\b.*\bSET\s+DEFAULT\s+nextval\b
      | ALTER\s+SEQUENCE\b | COMMENT\s+ON\b | CREATE\s+EXTENSION\b | CREATE\s+SCHEMA\b
      | GRANT\b | REVOKE\b | DROP\b
    )""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)


# --- COPY's text format ---------------------------------------------------------------------------------

_COPY_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)")
_COPY_SIMPLE = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def copy_field(raw: str) -> str | None:
    """One field of COPY's text format: \\N is NULL; backslash escapes are decoded."""
    if raw == "\\N":
        return None

    def decode(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _COPY_SIMPLE:
            return _COPY_SIMPLE[code]
        if code[0] == "x" and len(code) > 1:
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8))
        return code  # \\ -> \, and any other escaped character stands for itself

    return _COPY_ESCAPE.sub(decode, raw)
