"""Value linking: the database's own text values that the question mentions, so the model writes the literal the
data holds ('Brazil', not 'BR') and picks the column that holds it.

At introspection each text column's distinct values (up to a cap) are read, read-only, into an index from
normalised value to where it lives. A question is matched by its quoted strings and its runs of one to four
words, exactly and without regard to case; numbers and very short or very common words are never matched.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from text2sql.execution import ExecutionError, execute_read_only
from text2sql.schema.data_queries import table_source
from text2sql.schema.model import DatabaseSchema

logger = logging.getLogger(__name__)

_TEXT_TYPES = re.compile(r"char|text|clob|string|name|enum|citext|^$", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*", re.UNICODE)
_QUOTED = re.compile(r"[\"'“‘]([^\"'”’]{2,64})[\"'”’]")
_NEVER = frozenset("the a an of in on and or for to by with is are was what which who how many name names".split())
MAX_NGRAM = 4


@dataclass(frozen=True)
class ValueMatch:
    table: str
    column: str
    value: str

    def render(self) -> str:
        quoted = self.value.replace("'", "''")
        return f"{self.table}.{self.column} = '{quoted}'"


@dataclass
class ValueIndex:
    """Normalised text value -> every (table, column, value as stored) holding it."""

    entries: dict[str, list[ValueMatch]] = field(default_factory=dict)

    def add(self, table: str, column: str, value: str) -> None:
        key = normalise(value)
        if _linkable(key):
            self.entries.setdefault(key, []).append(ValueMatch(table, column, value))

    def matches(self, question: str, *, limit: int = 8) -> list[ValueMatch]:
        """Values the question mentions, longest mention first, each place at most once."""
        found: list[ValueMatch] = []
        for mention in _mentions(question):
            for match in self.entries.get(mention, ()):
                if match not in found:
                    found.append(match)
                if len(found) >= limit:
                    return found
        return found

    def __len__(self) -> int:
        return len(self.entries)


def is_text_type(declared: str) -> bool:
    """A column whose values are text (an undeclared type counts: SQLite stores text there)."""
    return bool(_TEXT_TYPES.search(declared))


def normalise(text: str) -> str:
    """Lower-case words joined by single spaces: 'AC/DC' and 'ac dc' are one key."""
    return " ".join(_WORD.findall(text.lower()))


def _linkable(key: str) -> bool:
    return len(key) >= 3 and key not in _NEVER and not key.replace(".", "").replace("-", "").isdigit()


def _mentions(question: str) -> list[str]:
    quoted = [normalise(q) for q in _QUOTED.findall(question)]
    words = _WORD.findall(question.lower())
    grams = [
        " ".join(words[start : start + size])
        for size in range(MAX_NGRAM, 0, -1)
        for start in range(len(words) - size + 1)
    ]
    return list(dict.fromkeys(quoted + grams))


def build_value_index(
    url: str, schema: DatabaseSchema, dialect: str, *, max_per_column: int = 1000, max_chars: int = 64,
    timeout_s: float = 10.0,
) -> ValueIndex:
    """Read each text column's distinct values (at most `max_per_column`, each at most `max_chars` long).
    A column that cannot be read is skipped and logged: linking is a help, never a reason to fail."""
    index = ValueIndex()
    for table in schema.tables:
        for column in table.columns:
            if not is_text_type(column.type):
                continue
            sql = _distinct_values_sql(table.name, column.name, dialect, max_chars=max_chars, limit=max_per_column)
            try:
                result = execute_read_only(url, sql, max_rows=max_per_column, timeout_s=timeout_s)
            except ExecutionError as e:
                logger.info("value index: %s.%s skipped: %s", table.name, column.name, e)
                continue
            for (value,) in result.rows:
                if isinstance(value, str) and value.strip():
                    index.add(table.name, column.name, value)
    return index


def _distinct_values_sql(table: str, column: str, dialect: str, *, max_chars: int, limit: int) -> str:
    name = exp.column(column, quoted=True)
    query = (
        exp.select(name).distinct().from_(table_source(table, dialect))
        .where(exp.and_(name.is_(exp.null()).not_(), exp.func("length", name) <= max_chars))
        .limit(limit)
    )
    return query.sql(dialect=sqlglot.Dialect.get_or_raise(dialect))
