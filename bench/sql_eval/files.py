"""sql-eval's files on disk: where the data set is, its PostgreSQL dumps, and the questions of each dialect.

The data set is ``<shared dir>/sql-eval`` unless ``$SQL_EVAL_DIR`` or a flag says otherwise (see `bench.paths`;
its SOURCE.md says where it came from): six PostgreSQL dumps ``defog_data/<db>/<db>.sql`` and the questions
``questions_gen_{postgres,sqlite}.csv``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

from bench.paths import DATASET_ENV, dataset_dir

SQL_EVAL_DIR_ENV = DATASET_ENV["sql-eval"]
QUESTION_COLUMNS = ("question", "query", "db_name", "query_category", "instructions")
Dialect = Literal["postgres", "sqlite"]


def sql_eval_dir() -> Path:
    """``$SQL_EVAL_DIR``, else ``<shared dir>/sql-eval`` (see `bench.paths`)."""
    return dataset_dir("sql-eval")


def dump_paths(base_dir: str | Path | None = None) -> dict[str, Path]:
    """``{db_name: .../defog_data/<db>/<db>.sql}`` for every dump there, by name."""
    root = Path(base_dir) if base_dir is not None else sql_eval_dir()
    dumps = {
        p.parent.name: p for p in sorted((root / "defog_data").glob("*/*.sql")) if p.stem == p.parent.name
    }
    if not dumps:
        raise FileNotFoundError(f"no defog_data/<db>/<db>.sql dumps under {root}")
    return dumps


def load_questions(dialect: Dialect, *, base_dir: str | Path | None = None) -> list[dict[str, str]]:
    """The rows of ``questions_gen_<dialect>.csv`` as dicts with the keys in `QUESTION_COLUMNS`."""
    if dialect not in ("postgres", "sqlite"):
        raise ValueError(f"dialect must be 'postgres' or 'sqlite', got {dialect!r}")
    path = (Path(base_dir) if base_dir is not None else sql_eval_dir()) / f"questions_gen_{dialect}.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(QUESTION_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} lacks the columns {sorted(missing)}")
        return [{column: (row[column] or "").strip() for column in QUESTION_COLUMNS} for row in reader]


def first_gold_alternative(query: str) -> str:
    """The first statement of a gold query, with the first option of each ``{a,b}`` group."""
    from text2sql.accuracy import expand_gold_alternatives

    alternatives = expand_gold_alternatives(query)
    if not alternatives:
        raise ValueError(f"empty gold query {query!r}")
    return alternatives[0]
