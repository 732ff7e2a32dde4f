"""SPACE-T's CPU cost on Chinook: a random model of the real one's size, since its weights cannot be fetched here.

    RAY_AUTH_MODE=disabled .venv/bin/python -m bench.bench_spacet           # needs the [modelscope] extra
    .venv/bin/python -m bench.bench_spacet --threads 2 --repeats 3

The model is built like the tests' tiny one (tests/engines/spacet_model.py, modelscope's own classes) with
damo/nlp_convai_text2sql_pretrain_cn's encoder sizes: 768 wide, 12 layers, 12 heads, 21,128 tokens. Random
weights answer arbitrarily, so this measures time, never accuracy: exporting Chinook's 11 tables with their
rows, loading the model, the first question (which writes the table files and builds modelscope's index), and
then first turns and follow-ups (the previous answer read back from its SQL as history_sql), one at a time.

Results: bench/results/spacet.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from bench.paths import RESULTS_DIR

QUESTIONS = ["有哪些专辑", "歌曲的价格是多少", "巴西的客户有哪些", "最贵的歌曲", "有多少个艺术家", "发票的国家", "城市是Paris的客户", "AC/DC的专辑"]
FOLLOW_UP = "那2010年的呢"
REAL_SIZES = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
REAL_VOCABULARY = 21128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=2, help="rounds over the questions")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "spacet.json")
    args = parser.parse_args()
    result = run(threads=args.threads, repeats=args.repeats)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


def run(*, threads: int, repeats: int) -> dict:
    from deployments.databases import DatabaseConfig
    from deployments.engines.modelscope_tableqa import ModelScopeTableQaEngine
    from deployments.serving.table_exports import TableExports
    from tests.engines.spacet_model import write_tiny_spacet
    from text2sql.pipeline.inputs import SchemaContext
    from text2sql.schema.introspect import introspect
    from text2sql.table_qa import TableExportPolicy, query_from_sql, render_sql

    work = Path(tempfile.mkdtemp(prefix="bench-spacet-"))
    database = DatabaseConfig(url="builtin:chinook")
    schema = introspect(database.resolve_url())
    words = sorted({n for t in schema.tables for n in (t.name, *(c.name for c in t.columns))} | set("".join(QUESTIONS)))
    filler = [f"[unused{i}]" for i in range(REAL_VOCABULARY - len(words) - 20)]
    model_dir = write_tiny_spacet(work / "model", words=words + filler, sizes=REAL_SIZES)
    context = SchemaContext(
        schema_=schema, dialect="sqlite", database="chinook", database_dialect="sqlite", source=database.execution_target()
    )
    started = time.perf_counter()
    export = TableExports().export(context, TableExportPolicy(max_rows_per_table=10_000, refresh_s=300))
    export_s = time.perf_counter() - started
    engine = ModelScopeTableQaEngine(model_dir, num_threads=threads, cache_dir=work / "tables")
    started = time.perf_counter()
    asyncio.run(engine.start())
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    asyncio.run(engine.answer(QUESTIONS[0], export.tables, None))
    first_question_s = time.perf_counter() - started
    firsts, follow_ups = [], []
    for _ in range(repeats):
        for question in QUESTIONS:
            started = time.perf_counter()
            answer = asyncio.run(engine.answer(question, export.tables, None))
            firsts.append(time.perf_counter() - started)
            sql = render_sql(answer.query, export.tables.table(answer.query.table), "sqlite")
            previous = query_from_sql(sql, export.tables, "sqlite")
            started = time.perf_counter()
            asyncio.run(engine.answer(FOLLOW_UP, export.tables, previous))
            follow_ups.append(time.perf_counter() - started)
    return {
        "model": "random weights, damo/nlp_convai_text2sql_pretrain_cn's sizes",
        "parameters_mb": round((model_dir / "pytorch_model.bin").stat().st_size / 1e6),
        "database": "chinook",
        "tables": len(export.tables.tables),
        "rows_exported": sum(len(t.rows) for t in export.tables.tables),
        "threads": threads,
        "export_s": round(export_s, 2),
        "load_s": round(load_s, 2),
        "first_question_s": round(first_question_s, 2),
        "first_turn_ms": _summary(firsts),
        "follow_up_ms": _summary(follow_ups),
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
    }


def _summary(seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    return {"n": len(ms), "median": round(statistics.median(ms)), "p90": round(ms[int(0.9 * (len(ms) - 1))]), "max": round(ms[-1])}


def _cpus() -> int | None:
    import os

    return os.cpu_count()


if __name__ == "__main__":
    main()
