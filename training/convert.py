"""Training JSONL from Spider's train split, or from question/SQL pairs on a live database.

    python -m training.convert spider --spider-dir ../shared/spider/train --split train --out data/spider_train.jsonl
    python -m training.convert spider --spider-dir ../shared/spider/train --split train --out data/s500.jsonl \\
        --limit 500 --seed 0
    python -m training.convert pairs --database-url sqlite:///shop.db --pairs shop_pairs.jsonl --out data/shop.jsonl
    python -m training.convert spider --spider-dir ../shared/spider/train --examples --out data/spider_examples.jsonl

Each line carries the structured schema introspected the way serving introspects a configured database
(`SchemaResolver`: the same sample values, the database's name), so the prompt rendered for training is the one
the served model sees. Spider's gold SQL is written in standard SQL where that keeps its rows
(`training/gold_sql.py`: single-quoted strings, one space). A question whose gold SQL the project's validator
refuses, or whose database file is missing, is left out and reported on stderr with its index: a converter may
drop it, the loader never does. `--examples` writes only `{question, sql}` per line: an example store for the
pipeline's retrieved examples (`pipeline.example_store`, text2sql/examples.py). Evaluation sets (any path through
a `dev` or `sql-eval` directory) are refused: their answers must never be trained on.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from deployments.databases import DatabaseConfig
from deployments.errors import DatabaseUnavailable
from deployments.schema_resolver import SchemaResolver
from text2sql.execution import ExecutionError, execute_read_only
from text2sql.schema import DatabaseSchema
from text2sql.validation import validate_sql
from training.gold_sql import standard_sql
from training.jsonl import DataError
from training.records import TrainingRecord

logger = logging.getLogger(__name__)

SPIDER_SPLITS = {"train": "train_spider.json", "train_others": "train_others.json"}
EVALUATION_PARTS = ("dev", "sql-eval")
# How many dropped questions the report shows; the count covers all of them.
SHOWN_DROPPED = 5


class ConvertError(ValueError):
    """The source cannot be converted: an evaluation set, a missing database file, a database that cannot be read."""


# Why a converter leaves a question out; each kind is counted and shown apart in the report.
DROP_KINDS = {"invalid_sql": "the validator refuses their gold SQL", "no_database": "their database file is missing"}


@dataclass
class Dropped:
    index: int  # the question's position in its source file (a JSON-lines file: its line number)
    where: str  # its database
    kind: str  # a key of DROP_KINDS
    reason: str


@dataclass
class Conversion:
    records: list[TrainingRecord] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    rewritten: int = 0  # gold SQL written in standard SQL (training/gold_sql.py), with the same rows
    kept_as_written: int = 0  # gold SQL the rewrite changed the rows of, or could not read: kept as it was

    @property
    def total(self) -> int:
        return len(self.records) + len(self.dropped)


def refuse_evaluation_set(path: Path) -> None:
    """Raise ConvertError for a path through a `dev` or `sql-eval` directory, as given or resolved."""
    for parts in (Path(path).parts, Path(path).resolve().parts):
        if any(part in EVALUATION_PARTS for part in parts):
            raise ConvertError(f"refusing {path}: it is an evaluation set (dev, sql-eval), never training data")


def convert_spider(
    spider_dir: str | Path, *, split: str = "train", limit: int | None = None, seed: int = 0
) -> Conversion:
    """Spider's `<split file>`, `database/<db_id>/<db_id>.sqlite`: one record per question whose gold SQL passes
    the validator; `limit` questions drawn with `seed`, kept in file order."""
    if split not in SPIDER_SPLITS:
        raise ConvertError(f"unknown Spider split {split!r}; training splits: {', '.join(SPIDER_SPLITS)}")
    questions_path = Path(spider_dir) / SPIDER_SPLITS[split]
    refuse_evaluation_set(questions_path)
    questions = _spider_questions(questions_path)
    indexes = list(range(len(questions)))
    if limit is not None and limit < len(indexes):
        indexes = sorted(random.Random(seed).sample(indexes, limit))
    schemas: dict[str, DatabaseSchema | None] = {}
    conversion = Conversion()
    for index in indexes:
        db_id, question, sql = questions[index]
        if db_id not in schemas:
            schemas[db_id] = _spider_schema(Path(spider_dir) / "database", db_id)
        if schemas[db_id] is None:
            # Spider copies may lack a few databases (the shared one: baseball_1, soccer_1); said, not hidden.
            missing = f"no SQLite file database/{db_id}/{db_id}.sqlite"
            conversion.dropped.append(Dropped(index, db_id, "no_database", missing))
            continue
        _add(conversion, index, db_id, question=question, sql=sql, schema=schemas[db_id], dialect="sqlite",
             standardise_on=_spider_url(Path(spider_dir) / "database", db_id))
    return conversion


def convert_pairs(database_url: str, pairs_path: str | Path, *, name: str | None = None) -> Conversion:
    """`{question, sql}` pairs (a JSON list or JSON lines) on the database at `database_url`; `name` is what the
    serve config calls the database (the prompt shows it), by default the URL's database name."""
    refuse_evaluation_set(Path(pairs_path))
    pairs = _read_pairs(Path(pairs_path))
    try:
        config = DatabaseConfig(url=database_url)
    except ValueError as e:
        raise ConvertError(f"--database-url: {e}") from None
    name = name or _database_name(database_url)
    schema = served_schema(name, config)
    conversion = Conversion()
    for index, question, sql in pairs:
        _add(conversion, index, name, question=question, sql=sql, schema=schema, dialect=config.dialect())
    return conversion


def served_schema(name: str, config: DatabaseConfig) -> DatabaseSchema:
    """The schema serving would introspect for `config` configured as `name`."""
    try:
        return SchemaResolver({name: config}).schema(name)
    except DatabaseUnavailable as e:
        raise ConvertError(e.message) from None


def write_records(records: list[TrainingRecord], out: Path, *, examples_only: bool = False) -> None:
    """`examples_only`: each line is `{question, sql}`, the example store's form, without the schema."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as lines:
        for record in records:
            if examples_only:
                data = {"question": record.question, "sql": record.sql}
            else:
                data = record.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            lines.write(json.dumps(data, ensure_ascii=False) + "\n")


def dropped_report(conversion: Conversion) -> str:
    """How many questions were left out and why, with the first few of each kind by index; how many gold queries
    were rewritten in standard SQL."""
    rewrites = []
    if conversion.rewritten or conversion.kept_as_written:
        rewrites.append(
            f"wrote {conversion.rewritten} gold queries in standard SQL (same rows); kept {conversion.kept_as_written} "
            "as written (the rewrite changed their rows or could not read them)"
        )
    if not conversion.dropped:
        return "\n".join([f"kept all {conversion.total} questions", *rewrites])
    lines = [f"dropped {len(conversion.dropped)} of {conversion.total} questions", *rewrites]
    for kind, why in DROP_KINDS.items():
        dropped = [d for d in conversion.dropped if d.kind == kind]
        if dropped:
            lines.append(f"{len(dropped)} because {why}:")
            lines += [f"  #{d.index} ({d.where}): {d.reason}" for d in dropped[:SHOWN_DROPPED]]
            if len(dropped) > SHOWN_DROPPED:
                lines.append(f"  ... and {len(dropped) - SHOWN_DROPPED} more")
    return "\n".join(lines)


def _add(conversion: Conversion, index: int, where: str, *, question: str, sql: str, schema: DatabaseSchema,
         dialect: str, standardise_on: str | None = None) -> None:
    """`standardise_on`: the database URL on which a rewrite of the gold SQL (gold_sql.standard_sql) must give
    the original's rows to replace it."""
    result = validate_sql(sql, dialect=dialect, schema=schema)
    if not result.valid:
        conversion.dropped.append(Dropped(index, where, "invalid_sql", "; ".join(issue.message for issue in result.errors)))
        return
    sql = sql.strip()
    if standardise_on is not None:
        sql = _standardised(conversion, sql, schema, dialect, standardise_on)
    conversion.records.append(TrainingRecord(question=question.strip(), schema=schema, sql=sql, dialect=dialect))


def _standardised(conversion: Conversion, sql: str, schema: DatabaseSchema, dialect: str, url: str) -> str:
    rewritten = standard_sql(sql, schema, dialect=dialect)
    if rewritten is None:
        conversion.kept_as_written += 1
        return sql
    if rewritten == sql:
        return sql
    try:
        same_rows = validate_sql(rewritten, dialect=dialect, schema=schema).valid and (
            execute_read_only(url, rewritten, max_rows=100_000).rows == execute_read_only(url, sql, max_rows=100_000).rows
        )
    except ExecutionError:  # the original runs (Spider's answers do); a rewrite that fails is not kept
        same_rows = False
    if not same_rows:
        conversion.kept_as_written += 1
        return sql
    conversion.rewritten += 1
    return rewritten


def _spider_questions(path: Path) -> list[tuple[str, str, str]]:
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConvertError(f"{path}: cannot be read as JSON: {e}") from None
    if not isinstance(items, list):
        raise ConvertError(f"{path}: expected a JSON list of questions")
    questions, problems = [], []
    for index, item in enumerate(items):
        fields = [item.get(key) if isinstance(item, dict) else None for key in ("db_id", "question", "query")]
        if not all(isinstance(value, str) and value.strip() for value in fields):
            problems.append(f"{path}: question {index}: needs strings 'db_id', 'question' and 'query'")
        questions.append(tuple(fields))
    if problems:
        raise DataError(problems)
    return questions


def _spider_schema(database_dir: Path, db_id: str) -> DatabaseSchema | None:
    """None when the database file is missing; ConvertError when it is there but cannot be read."""
    if not _spider_sqlite(database_dir, db_id).is_file():
        return None
    return served_schema(db_id, DatabaseConfig(url=_spider_url(database_dir, db_id)))


def _spider_sqlite(database_dir: Path, db_id: str) -> Path:
    return database_dir / db_id / f"{db_id}.sqlite"


def _spider_url(database_dir: Path, db_id: str) -> str:
    # Absolute: the URL is opened from wherever the converter runs.
    return f"sqlite:///{_spider_sqlite(database_dir, db_id).resolve()}"


def _read_pairs(path: Path) -> list[tuple[int, str, str]]:
    """(index, question, sql): a JSON list's position, or a JSON-lines file's line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as e:
        raise ConvertError(f"{path}: cannot be read: {e}") from None
    json_lines = not text.lstrip().startswith("[")

    def where(index: int) -> str:
        return f"{path}:{index}" if json_lines else f"{path}: pair {index}"

    problems: list[str] = []
    if json_lines:
        numbered = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    numbered.append((number, json.loads(line)))
                except ValueError as e:
                    problems.append(f"{where(number)}: not JSON: {e}")
    else:
        try:
            numbered = list(enumerate(json.loads(text)))
        except ValueError as e:
            raise DataError([f"{path}: not a JSON list: {e}"]) from None
    pairs = []
    for index, item in numbered:
        question, sql = (item.get("question"), item.get("sql")) if isinstance(item, dict) else (None, None)
        if not (isinstance(question, str) and question.strip() and isinstance(sql, str) and sql.strip()):
            problems.append(f"{where(index)}: needs strings 'question' and 'sql'")
        pairs.append((index, question, sql))
    if problems:
        raise DataError(problems)
    if not pairs:
        raise DataError([f"{path}: holds no pairs"])
    return pairs


def _database_name(url: str) -> str | None:
    # As introspection names it: a SQLite file's stem, otherwise the URL's database.
    database = make_url(url).database
    if database and make_url(url).get_backend_name() == "sqlite":
        return Path(database).stem
    return database or None


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.convert", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    spider = commands.add_parser("spider", help="Spider's train split")
    spider.add_argument("--spider-dir", type=Path, required=True, help="holds the split file and database/")
    spider.add_argument("--split", default="train", choices=sorted(SPIDER_SPLITS))
    spider.add_argument("--limit", type=int, default=None, help="draw this many questions (default: all)")
    spider.add_argument("--seed", type=int, default=0, help="seed of the --limit draw")
    spider.add_argument("--out", type=Path, required=True)
    pairs = commands.add_parser("pairs", help="question/SQL pairs on a live database")
    pairs.add_argument("--database-url", required=True, help="SQLAlchemy URL of the database the pairs ask")
    pairs.add_argument("--pairs", type=Path, required=True, help="JSON list or JSON lines of {question, sql}")
    pairs.add_argument("--name", default=None, help="the database's name in the serve config (default: the URL's)")
    pairs.add_argument("--out", type=Path, required=True)
    for command in (spider, pairs):
        command.add_argument(
            "--examples", action="store_true",
            help="write {question, sql} pairs only: an example store (pipeline.example_store), not training data",
        )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        if args.command == "spider":
            conversion = convert_spider(args.spider_dir, split=args.split, limit=args.limit, seed=args.seed)
        else:
            conversion = convert_pairs(args.database_url, args.pairs, name=args.name)
    except (ConvertError, DataError) as e:
        logger.error("%s", e)
        return 2
    (logger.warning if conversion.dropped else logger.info)("%s", dropped_report(conversion))
    if not conversion.records:
        logger.error("no question is left to write; %s is not written", args.out)
        return 1
    write_records(conversion.records, args.out, examples_only=args.examples)
    logger.info("wrote %d records to %s", len(conversion.records), args.out)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)  # our report, not every database's introspection
    raise SystemExit(main())
