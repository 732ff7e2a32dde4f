"""defog sql-eval's databases and questions, ready to query: PostgreSQL databases and SQLite files.

- `load_questions` reads the questions of one dialect (`files`: where the data set is, what it holds).
- `load_postgres` loads each PostgreSQL dump into its own database (`postgres`).
- `build_sqlite` transpiles each dump into a SQLite file (`sqlite_build`): the dump is split into statements
  (`dump_text`), planned for SQLite (`dump_plan`, `sqlite_ddl`) with its constant expressions evaluated as
  PostgreSQL would (`pg_constants`, `pg_functions`, `pg_values`).
- `compare_data`, `verify_gold_queries` and `compare_dialects` check the result (`verify`);
  ``python -m bench.sql_eval`` runs them all.

A loaded database or built file is kept while its dump's fingerprint matches (`fingerprint`).
"""

from bench.sql_eval.files import (
    QUESTION_COLUMNS,
    SQL_EVAL_DIR_ENV,
    Dialect,
    dump_paths,
    first_gold_alternative,
    load_questions,
    sql_eval_dir,
)
from bench.sql_eval.postgres import DEFAULT_DB_PREFIX, DEFAULT_DSN_BASE, load_postgres
from bench.sql_eval.sqlite_build import build_sqlite, default_cache_dir
from bench.sql_eval.verify import compare_data, compare_dialects, verify_gold_queries

__all__ = [
    "DEFAULT_DB_PREFIX",
    "DEFAULT_DSN_BASE",
    "QUESTION_COLUMNS",
    "SQL_EVAL_DIR_ENV",
    "Dialect",
    "build_sqlite",
    "compare_data",
    "compare_dialects",
    "default_cache_dir",
    "dump_paths",
    "first_gold_alternative",
    "load_postgres",
    "load_questions",
    "sql_eval_dir",
    "verify_gold_queries",
]
