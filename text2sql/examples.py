"""Question/SQL example pairs, and the few most like a question, found with BM25 (bm25s).

A store is a JSON list or JSON-lines file of `{"question": ..., "sql": ...}` (Spider's `query` key is read as
`sql`, so Spider's train split loads as it is). The pipeline shows the nearest pairs after the schema, so the
schema prefix stays the same for every question on a database and stays in the engine's prefix cache.

Never point a store at an evaluation set (Spider dev, sql-eval): its answers would leak into the prompts.
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from text2sql.strict import StrictModel

# Words, and CJK characters one by one: Chinese has no spaces to split on.
_TOKEN = re.compile(r"[\u4e00-\u9fff]|[^\W_]+", re.UNICODE)
_STOPWORDS = frozenset(
    "a an the of in on for to by with and or is are was were be what which who whom whose how many much "
    "all each every list show give find return me their its that this those these there from as at do does "
    "did have has".split()
)


class ExamplePair(StrictModel):
    question: str = Field(description="A question in plain language.")
    sql: str = Field(description="The SQL that answers it.")


class ExampleStoreError(ValueError):
    """The example file cannot be read as question/SQL pairs."""


def tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOPWORDS]


def load_examples(path: str | Path) -> list[ExamplePair]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ExampleStoreError(f"example store {path} cannot be read: {e.strerror or e}") from e
    try:
        records = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()
        ]
    except json.JSONDecodeError as e:
        raise ExampleStoreError(f"example store {path} is not JSON or JSON lines: {e}") from e
    pairs = []
    for index, record in enumerate(records):
        sql = record.get("sql", record.get("query")) if isinstance(record, dict) else None
        question = record.get("question") if isinstance(record, dict) else None
        if not isinstance(question, str) or not isinstance(sql, str):
            raise ExampleStoreError(f"example store {path}, record {index}: needs string 'question' and 'sql' (or 'query')")
        pairs.append(ExamplePair(question=question.strip(), sql=" ".join(sql.split())))
    return pairs


class ExampleIndex:
    """BM25 over the questions of a store; `nearest` skips pairs whose SQL repeats one already chosen."""

    def __init__(self, pairs: list[ExamplePair]) -> None:
        import bm25s

        self._pairs = pairs
        self._retriever = bm25s.BM25()
        if pairs:
            self._retriever.index([tokens(p.question) or ["_"] for p in pairs], show_progress=False)
        self._lock = threading.Lock()  # bm25s's retrieve is not documented as thread-safe

    def __len__(self) -> int:
        return len(self._pairs)

    def nearest(self, question: str, k: int) -> list[ExamplePair]:
        query = tokens(question)
        if not self._pairs or not query or k <= 0:
            return []
        with self._lock:
            ids, scores = self._retriever.retrieve(
                [query], k=min(len(self._pairs), 4 * k), show_progress=False, n_threads=1
            )
        chosen: list[ExamplePair] = []
        seen_sql: set[str] = set()
        for index, score in zip(ids[0], scores[0], strict=True):
            pair = self._pairs[int(index)]
            if score <= 0 or pair.sql.lower() in seen_sql or pair.question == question:
                continue
            seen_sql.add(pair.sql.lower())
            chosen.append(pair)
            if len(chosen) == k:
                break
        # Most similar last: nearest the question, where a small model attends most.
        return chosen[::-1]


@lru_cache(maxsize=8)
def example_index(path: str) -> ExampleIndex:
    """One index per store file, per process."""
    return ExampleIndex(load_examples(path))
