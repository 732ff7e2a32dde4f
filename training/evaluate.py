"""Execution accuracy of a served model (or base + adapter) on questions with gold SQL, with an error breakdown.

    python -m training.evaluate --model qwen2.5-coder-0.5b:spider --data ../shared/spider/dev/dev_public.json \\
        --url http://localhost:8000 [--limit 100] [--out results.json]
    python -m training.evaluate --model qwen2.5-coder-0.5b --data held_out.jsonl --databases-dir DIR

`--data` is a training-format JSONL file or a Spider-format questions file (`question`, `query`, `db_id`, with
`database/<db_id>/<db_id>.sqlite` beside it). Each question goes through the served pipeline: the running app's
HTTP API with `--url`, or in process with `--base-model` (and `--adapter`) on the llama.cpp or Transformers
engine. The SQL is run read-only on the question's database and judged with `text2sql.scoring`, the
implementation the accuracy benchmarks use. Writes JSON (`--out`) and prints a markdown table.

Outcomes: right, wrong result, execution error, failed validation, did not parse.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from text2sql.execution import ExecutionError, execute_read_only
from text2sql.scoring import GoldResults, judge

logger = logging.getLogger("training.evaluate")

OUTCOMES = ("right", "wrong result", "execution error", "failed validation", "did not parse")


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    gold_sql: str
    database: str  # a name for the report and the gold cache
    url: str  # where gold and predicted SQL run, read-only
    request: dict[str, Any]  # the /v1/sql/generate body, without `model`
    dialect: str = "sqlite"


@dataclass
class Evaluation:
    model: str
    rule: str
    outcomes: Counter = field(default_factory=Counter)
    details: list[dict] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.outcomes["right"] / max(len(self.details), 1)

    def summary(self) -> dict[str, Any]:
        latencies = [d["latency_ms"] for d in self.details]
        return {
            "model": self.model, "rule": self.rule, "questions": len(self.details), "right": self.outcomes["right"],
            "accuracy": self.accuracy, "outcomes": {o: self.outcomes[o] for o in OUTCOMES},
            "median_latency_ms": statistics.median(latencies) if latencies else None,
        }


# ---- questions ---------------------------------------------------------------------------------------------


def spider_questions(path: Path, *, limit: int | None = None) -> list[EvalQuestion]:
    """A Spider-format questions file; the databases are `database/<db_id>/<db_id>.sqlite` in its directory."""
    database_dir = path.parent / "database"
    items = json.loads(path.read_text())
    questions = []
    for index, item in enumerate(items[:limit] if limit else items):
        sqlite = database_dir / item["db_id"] / f"{item['db_id']}.sqlite"
        questions.append(
            EvalQuestion(
                id=f"{path.stem}-{index}", question=item["question"], gold_sql=item["query"], database=item["db_id"],
                url=f"sqlite:///{sqlite.resolve()}", request={"question": item["question"], "database": item["db_id"]},
            )
        )
    return questions


def jsonl_questions(path: Path, *, databases_dir: Path | None, limit: int | None = None) -> list[EvalQuestion]:
    """Training-format records. A record's database is the one it names, or its schema's name: either way a SQLite
    file `<databases_dir>/<name>/<name>.sqlite` (Spider's layout) or `<databases_dir>/<name>.sqlite`."""
    from training.records import load_records

    records = load_records(path) if databases_dir is None else _records_with_databases(path, databases_dir)
    questions = []
    for index, record in enumerate(records[:limit] if limit else records):
        name = record.database or getattr(record.schema_, "name", None)
        url = _sqlite_url(databases_dir, name) if databases_dir and name else None
        if url is None:
            raise ValueError(f"{path}:{index + 1}: no database to run the SQL on; give --databases-dir with {name or 'its database'}")
        body = {"question": record.question, "evidence": record.evidence, "history": [h.model_dump() for h in record.history]}
        body |= {"database": record.database} if record.database else {"schema": _schema_body(record.schema_)}
        questions.append(
            EvalQuestion(
                id=f"{path.stem}-{index}", question=record.question, gold_sql=record.sql, database=name, url=url,
                request={k: v for k, v in body.items() if v}, dialect=record.dialect or "sqlite",
            )
        )
    return questions


def _records_with_databases(path: Path, databases_dir: Path):
    from deployments.databases import DatabaseConfig
    from training.records import load_records

    names = {p.name for p in databases_dir.iterdir() if p.is_dir()} | {p.stem for p in databases_dir.glob("*.sqlite")}
    configs = {name: DatabaseConfig(url=_sqlite_url(databases_dir, name)) for name in sorted(names)}
    return load_records(path, databases={k: v for k, v in configs.items() if v.url})


def _sqlite_url(directory: Path, name: str) -> str | None:
    for candidate in (directory / name / f"{name}.sqlite", directory / f"{name}.sqlite"):
        if candidate.is_file():
            return f"sqlite:///{candidate.resolve()}"
    return None


def _schema_body(schema: Any) -> Any:
    return schema if isinstance(schema, str) else schema.model_dump(mode="json", exclude_defaults=True)


# ---- asking ------------------------------------------------------------------------------------------------


class HttpAsker:
    """The running app's `/v1/sql/generate` (the database must be configured there under the same name)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None) -> None:
        self.base_url, self.model = base_url.rstrip("/"), model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def ask(self, question: EvalQuestion) -> dict:
        body = {"model": self.model, **question.request}
        response = requests.post(f"{self.base_url}/v1/sql/generate", json=body, headers=self.headers, timeout=900)
        if response.status_code != 200:
            return {"success": False, "sql": "", "error": f"HTTP {response.status_code}: {response.text[:300]}", "attempts": []}
        return response.json()


class InProcessAsker:
    """The served pipeline without a server: one engine in this process (llama.cpp for a GGUF base, else
    Transformers), the adapter loaded into it, databases introspected by serving's SchemaResolver."""

    def __init__(self, base_model: str, *, adapter: Path | None, urls: dict[str, str], max_tokens: int = 256) -> None:
        from deployments.config import ModelConfig, PipelineSettings
        from deployments.databases import DatabaseConfig
        from deployments.engines.registry import build_engine
        from deployments.model_source import parse_model_source, resolve_model_path
        from deployments.schema_resolver import SchemaResolver

        is_gguf = resolve_model_path(parse_model_source(base_model)).suffix.lower() == ".gguf"
        engine = {"backend": "llama_cpp", "n_ctx": 8192} if is_gguf else {"backend": "transformers", "torch_dtype": "fp32"}
        self.config = ModelConfig(
            name="evaluated", source=base_model, backend=engine["backend"], engine=engine,
            generation={"max_tokens": max_tokens, "temperature": 0.0},
        )
        self.model = "evaluated" + (f":{adapter.name}" if adapter else "")
        self.pipeline = PipelineSettings()
        self.resolver = SchemaResolver({name: DatabaseConfig(url=url) for name, url in urls.items()}, self.pipeline)
        self.engine = build_engine(self.config)
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.engine.start())
        self.adapter = None
        if adapter is not None:
            self.loop.run_until_complete(self.engine.load_adapter(adapter.name, str(adapter)))
            self.adapter = adapter.name

    def ask(self, question: EvalQuestion) -> dict:
        from deployments.protocol.sql import SqlGenerateRequest
        from deployments.serving.sql_generation import generate_sql

        request = SqlGenerateRequest.model_validate(question.request)
        context = self.resolver.resolve(request)
        answer = self.loop.run_until_complete(
            generate_sql(self.engine, self.config, request, context, pipeline=self.pipeline, adapter=self.adapter)
        )
        return answer.model_dump(mode="json")


# ---- judging -----------------------------------------------------------------------------------------------


def outcome(answer: dict, question: EvalQuestion, gold: GoldResults, rule: str) -> str:
    if not answer.get("success"):
        last = (answer.get("attempts") or [{}])[-1]
        if not answer.get("sql") or last.get("stage") == "extract" or last.get("code") in ("parse_error", "empty"):
            return "did not parse"
        return "failed validation"
    try:
        result = execute_read_only(question.url, answer["sql"], max_rows=20000, timeout_s=30)
    except ExecutionError:
        return "execution error"
    right = judge(gold, database=question.database, gold_sql=question.gold_sql, dialect=question.dialect, result=result)
    return "right" if right[rule] else "wrong result"


def evaluate(asker: Any, questions: list[EvalQuestion], *, model: str, rule: str = "spider") -> Evaluation:
    urls = {q.database: q.url for q in questions}
    gold = GoldResults(lambda name: urls[name])
    evaluation = Evaluation(model=model, rule=rule)
    for index, question in enumerate(questions, start=1):
        started = time.perf_counter()
        answer = asker.ask(question)
        latency_ms = (time.perf_counter() - started) * 1000
        verdict = outcome(answer, question, gold, rule)
        evaluation.outcomes[verdict] += 1
        evaluation.details.append(
            {"id": question.id, "outcome": verdict, "sql": answer.get("sql"), "error": answer.get("error"),
             "latency_ms": round(latency_ms)}
        )
        if index % 25 == 0:
            logger.info("%s: %d/%d, %d right", model, index, len(questions), evaluation.outcomes["right"])
    return evaluation


def markdown_table(evaluations: list[Evaluation]) -> str:
    lines = [
        "| model | questions | accuracy | " + " | ".join(OUTCOMES[1:]) + " | median latency |",
        "|---|---|---|" + "---|" * (len(OUTCOMES) - 1) + "---|",
    ]
    for evaluation in evaluations:
        s = evaluation.summary()
        counts = " | ".join(str(s["outcomes"][o]) for o in OUTCOMES[1:])
        median = f"{s['median_latency_ms'] / 1000:.2f} s" if s["median_latency_ms"] is not None else "-"
        lines.append(f"| {s['model']} | {s['questions']} | {100 * s['accuracy']:.1f}% ({s['right']}) | {counts} | {median} |")
    return "\n".join(lines)


# ---- after training ----------------------------------------------------------------------------------------


def evaluate_held_out(config: Any, adapter: Path) -> dict[str, Any]:
    """Base model and adapter on the job's held-out split, in process; both go into the adapter's metadata."""
    from training.adapter_output import update_metadata
    from training.examples import split_records

    _, held_out = split_records(config)
    held_out = held_out[: config.evaluation.limit] if config.evaluation.limit else held_out
    urls = {name: db.resolve_url() for name, db in config.data.databases.items()}
    questions = [_question_of_record(index, record, urls, config.data.databases_dir) for index, record in enumerate(held_out)]
    questions = [q for q in questions if q is not None]
    if not questions:
        logger.warning("no held-out question has a database to run on (data.databases, data.databases_dir): nothing to evaluate")
        return {}
    urls |= {q.database: q.url for q in questions}
    results = {}
    for label, with_adapter in (("base", None), ("adapter", adapter)):
        asker = InProcessAsker(config.base_model, adapter=with_adapter, urls=urls, max_tokens=config.evaluation.max_tokens)
        results[label] = evaluate(asker, questions, model=label, rule="spider").summary()
    update_metadata(adapter, held_out_evaluation=results)
    logger.info("held-out execution accuracy: base %.1f%%, adapter %.1f%% (%d questions)",
                100 * results["base"]["accuracy"], 100 * results["adapter"]["accuracy"], len(questions))
    return results


def _question_of_record(index: int, record: Any, urls: dict[str, str], databases_dir: Path | None) -> EvalQuestion | None:
    """Asked on its database by name, so the pipeline introspects it as serving does; None when it has none."""
    name = record.database or getattr(record.schema_, "name", None)
    url = urls.get(name) if record.database else (_sqlite_url(databases_dir, name) if databases_dir and name else None)
    if url is None:
        return None
    body = {"question": record.question, "database": name, "evidence": record.evidence,
            "history": [h.model_dump() for h in record.history]}
    return EvalQuestion(
        id=f"held-out-{index}", question=record.question, gold_sql=record.sql, database=name,
        url=url, request={k: v for k, v in body.items() if v}, dialect=record.dialect or "sqlite",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="served model name (with --url), or a label (in process)")
    parser.add_argument("--data", type=Path, required=True, help="training-format JSONL or a Spider questions file")
    parser.add_argument("--url", help="the running app: ask through its HTTP API")
    parser.add_argument("--base-model", help="in process: the base model, written like a served model's source")
    parser.add_argument("--adapter", type=Path, help="in process: the adapter directory to load on the base model")
    parser.add_argument("--databases-dir", type=Path, help="SQLite databases for JSONL records, by name")
    parser.add_argument("--rule", choices=("spider", "sql-eval"), default="spider")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out", type=Path, help="write the summary and per-question details here (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    if bool(args.url) == bool(args.base_model):
        parser.error("give either --url (the running app) or --base-model (in process)")
    if args.data.suffix == ".json":
        questions = spider_questions(args.data, limit=args.limit)
    else:
        questions = jsonl_questions(args.data, databases_dir=args.databases_dir, limit=args.limit)
    if args.url:
        import os

        asker: Any = HttpAsker(args.url, args.model, api_key=os.environ.get("T2S_API_KEY"))
    else:
        asker = InProcessAsker(args.base_model, adapter=args.adapter, urls={q.database: q.url for q in questions})
    evaluation = evaluate(asker, questions, model=args.model, rule=args.rule)
    if args.out:
        args.out.write_text(json.dumps({"summary": evaluation.summary(), "details": evaluation.details}, indent=2) + "\n")
    print(markdown_table([evaluation]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
