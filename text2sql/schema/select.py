"""Fit a schema into a prompt budget: keep the tables a question is about, plus the tables that join them.

Ranking is lexical on purpose (no embedding model in this library): overlap between the question's
words and each table's name, column names, comments and sample values, with words that occur in many
tables (id, name) counting less. Chinese text has no spaces, so it is matched on characters and
character pairs.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable

from text2sql.schema.model import DatabaseSchema, Table
from text2sql.schema.render import render_ddl

# How much a question word counts when found in each part of a table.
_WEIGHT_TABLE_NAME = 3.0
_WEIGHT_COLUMN_NAME = 1.5
_WEIGHT_SAMPLE = 1.0
_WEIGHT_COMMENT = 1.0
# Share of a chosen table's relevance its foreign-key neighbours inherit.
_NEIGHBOUR_SHARE = 0.5
# Tables scoring below this share of the best table count as not matching at all.
_WEAK_MATCH_SHARE = 0.1

_STOPWORDS = frozenset(
    """a about above after all also am an and any are as at be been before being below between both but by
    can could did do does doing during each few for from further give had has have having he her here hers
    him his how i if in into is it its list me more most my no nor not of off on once only or other our out
    over own please same she should show so some such than that the their them then there these they this
    those through to too under until up very was we were what when where which while who whom why will with
    would you your""".split()
)
_CJK_STOP_CHARS = frozenset("的了是在有和与及或吗呢吧请把被对从给个些哪什么多少每所")
_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")


def select_tables(
    schema: DatabaseSchema,
    question: str,
    *,
    budget_chars: int,
    render: Callable[[DatabaseSchema], str] = render_ddl,
) -> tuple[DatabaseSchema, list[str]]:
    """The part of `schema` worth showing for `question`, rendered by `render` in at most `budget_chars`.

    When the whole schema fits, it is returned unchanged. Otherwise tables are ranked by relevance and
    added greedily while the rendering still fits. A table's foreign-key neighbours inherit half of its
    relevance, so the tables that join two matched tables (Album between Artist and Track) come right
    after them. Tables that neither match (scoring under a tenth of the best match counts as no match)
    nor join a chosen table are left out; when nothing matches, tables are taken in schema order.
    The result is never empty: the best table is kept even when it alone is over budget.
    Returns the reduced schema and its table names, in the schema's order.
    """
    if budget_chars <= 0:
        raise ValueError(f"budget_chars must be positive, got {budget_chars!r}")
    if len(render(schema)) <= budget_chars:
        return schema, [t.name for t in schema.tables]

    scores = _score_tables(schema.tables, question)
    best_score = max(scores, default=0.0)
    # A table that only shares a common word ("name") with the question would pad the prompt with noise.
    scores = [score if score >= _WEAK_MATCH_SHARE * best_score else 0.0 for score in scores]
    if not any(score > 0 for score in scores):
        scores = [float(len(scores) - i) for i in range(len(scores))]  # nothing matched: schema order
    neighbours = _foreign_key_neighbours(schema)

    chosen: list[int] = []
    remaining = set(range(len(schema.tables)))
    while remaining:
        chosen_set = set(chosen)

        def priority(index: int, chosen_set: set[int] = chosen_set) -> tuple[float, int]:
            inherited = sum(_NEIGHBOUR_SHARE * scores[n] for n in neighbours[index] if n in chosen_set)
            return scores[index] + inherited, -index  # ties keep schema order

        best = max(remaining, key=priority)
        if priority(best)[0] <= 0:
            break
        remaining.discard(best)
        candidate = schema.subset([schema.tables[i].name for i in [*chosen, best]])
        if chosen and len(render(candidate)) > budget_chars:
            continue  # too big now, and the budget only gets tighter; a smaller table may still fit
        chosen.append(best)

    reduced = schema.subset([schema.tables[i].name for i in chosen])
    return reduced, [t.name for t in reduced.tables]


def _score_tables(tables: list[Table], question: str) -> list[float]:
    question_tokens = set(words(question))
    if not question_tokens:
        return [0.0] * len(tables)
    per_table = [_table_tokens(t) for t in tables]
    # Inverse document frequency: a word found in every table says little about which one is meant.
    document_frequency: Counter[str] = Counter()
    for weighted in per_table:
        document_frequency.update(weighted.keys())
    total = len(tables)
    scores = []
    for weighted in per_table:
        score = 0.0
        for token in question_tokens & weighted.keys():
            score += weighted[token] * math.log(1 + total / document_frequency[token])
        scores.append(score)
    return scores


def _table_tokens(table: Table) -> dict[str, float]:
    """Each token of the table, with the weight of the most telling place it occurs in."""
    weighted: dict[str, float] = {}

    def add(tokens: Iterable[str], weight: float) -> None:
        for token in tokens:
            if weighted.get(token, 0.0) < weight:
                weighted[token] = weight

    add(words(table.name), _WEIGHT_TABLE_NAME)
    add(words(table.comment or ""), _WEIGHT_COMMENT)
    for column in table.columns:
        add(words(column.name), _WEIGHT_COLUMN_NAME)
        add(words(column.comment or ""), _WEIGHT_COMMENT)
        # Only text samples: numbers would match every "top 5" in a question.
        add((t for v in column.samples if isinstance(v, str) for t in words(v)), _WEIGHT_SAMPLE)
    return weighted


def name_parts(name: str) -> list[str]:
    """A name's lower-cased parts, snake_case and CamelCase split (`PlaylistId`, `playlist_id`: playlist, id)."""
    return [part.lower() for word in _WORD.findall(name) for part in _CAMEL_PART.findall(word)]


def words(text: str) -> list[str]:
    """Lower-cased, singular words; snake_case and CamelCase split (the joined form kept too); CJK text
    as single characters and character pairs."""
    tokens: list[str] = []
    for word in _WORD.findall(text):
        parts = _CAMEL_PART.findall(word)
        for part in [*parts, word] if len(parts) > 1 else parts:
            lowered = part.lower()
            if lowered not in _STOPWORDS:
                tokens.append(_singular(lowered))
    for run in _CJK_RUN.findall(text):
        tokens.extend(c for c in run if c not in _CJK_STOP_CHARS)
        tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return tokens


def _singular(word: str) -> str:
    """Enough English plurals for schema words: categories, addresses, boxes, tracks (not status, bus)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _foreign_key_neighbours(schema: DatabaseSchema) -> list[list[int]]:
    """Indexes of the tables joined to each table by a foreign key, in either direction."""
    index_of = {t.name.lower(): i for i, t in enumerate(schema.tables)}
    neighbours: list[list[int]] = [[] for _ in schema.tables]
    for source, table in enumerate(schema.tables):
        for fk in table.foreign_keys:
            target = index_of.get(fk.ref_table.lower())
            if target is None or target == source:
                continue
            if target not in neighbours[source]:
                neighbours[source].append(target)
            if source not in neighbours[target]:
                neighbours[target].append(source)
    return neighbours
