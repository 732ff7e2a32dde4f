"""SPACE-T fine-tuning end to end on the tiny SPACE-T of tests/engines/spacet_model.py: `python -m training.spacet`
checks the JSONL line by line, runs ModelScope's TableQuestionAnsweringTrainer in one Ray Train worker for a few
steps, keeps its checkpoint in storage_path, and writes a model directory that the SPACE-T engine
(`backend: modelscope_tableqa`) loads and answers with. Bad lines stop the job before any worker, named by line.

Needs the `[modelscope]` and `[training]` extras (skipped without them).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("modelscope", reason="SPACE-T fine-tuning needs the [modelscope] extra")
pytest.importorskip("datasets", reason="modelscope's pipelines import datasets: install the [modelscope] extra")
pytest.importorskip("ray.train", reason="the job runs on Ray Train: install the [training] extra")

from deployments.databases import DatabaseConfig  # noqa: E402
from deployments.engines.modelscope_tableqa import ModelScopeTableQaEngine  # noqa: E402
from deployments.engines.settings import ModelScopeTableQaSettings  # noqa: E402
from deployments.serving.table_exports import TableExports  # noqa: E402
from tests.engines.spacet_model import write_tiny_spacet  # noqa: E402
from text2sql.pipeline.inputs import SchemaContext  # noqa: E402
from text2sql.schema.introspect import introspect  # noqa: E402
from text2sql.table_qa import TableExportPolicy, render_sql  # noqa: E402
from text2sql.validation import validate_sql  # noqa: E402
from training.jsonl import DataError  # noqa: E402
from training.spacet.config import SpaceTTrainingConfig  # noqa: E402
from training.spacet.examples import load_examples  # noqa: E402
from training.spacet.output import METADATA  # noqa: E402
from training.spacet.records import ACTIONS  # noqa: E402
from training.spacet.train import main  # noqa: E402

DDL = """
CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);
CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, singer_id INTEGER, city TEXT, year INTEGER);
"""
SINGERS = [(1, "王菲", "中国", 55), (2, "Adele", "英国", 36), (3, "周杰伦", "中国", 45)]
CONCERTS = [(1, 1, "北京", 2019), (2, 3, "上海", 2023), (3, 2, "伦敦", 2024)]
WORDS = [
    *"北京上海伦敦中国英国王菲周杰伦有哪些演唱会的呢歌手年龄多少基金甲乙", "adele",
    "singer", "concert", "name", "country", "age", "city", "year", "id", "_",
]
FUND = {
    "name": "fund",
    "columns": [{"name": "name", "kind": "text"}, {"name": "city", "kind": "text"}],
    "rows": [["甲", "北京"], ["乙", "上海"]],
}
FIRST = {"question": "北京有哪些演唱会", "sql": "SELECT concert_id FROM concert WHERE city = '北京'"}
TRAIN = [
    {"database": "music", "table": "concert", **FIRST},
    {"database": "music", "table": "concert", "question": "上海有哪些演唱会", "sql": "SELECT concert_id FROM concert WHERE city = '上海'"},
    {"database": "music", "table": "concert", "question": "伦敦有哪些演唱会", "sql": "SELECT concert_id FROM concert WHERE city = '伦敦'"},
    {"database": "music", "table": "singer", "question": "中国有哪些歌手", "sql": "SELECT name FROM singer WHERE country = '中国'"},
    {"database": "music", "table": "singer", "question": "歌手有多少", "sql": "SELECT COUNT(*) FROM singer"},
    # a follow-up: this turn's own query, merged into the previous one by the action
    {"database": "music", "table": "concert", "question": "上海的呢", "history": [FIRST], "action": "change_cond",
     "query": {"sel": [0], "agg": [0], "cond_conn_op": 0, "conds": [[2, 2, "上海"]]}},
    # a table given inline, the target in SPACE-T's own form
    {"table": FUND, "question": "北京的基金", "query": {"sel": [0], "agg": [0], "conds": [[1, 2, "北京"]]}},
]
HELD_OUT = [
    {"database": "music", "table": "singer", "question": "英国有哪些歌手", "sql": "SELECT name FROM singer WHERE country = '英国'"},
    {"table": FUND, "question": "上海的基金", "query": {"sel": [0], "agg": [0], "conds": [[1, 2, "上海"]]}},
]
EPOCHS, BATCH = 3, 4


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spacet-train")
    write_tiny_spacet(root / "tiny-spacet", words=WORDS)
    with sqlite3.connect(root / "music.sqlite") as conn:
        conn.executescript(DDL)
        conn.executemany("INSERT INTO singer VALUES (?, ?, ?, ?)", SINGERS)
        conn.executemany("INSERT INTO concert VALUES (?, ?, ?, ?)", CONCERTS)
    write_jsonl(root / "train.jsonl", TRAIN)
    write_jsonl(root / "held_out.jsonl", HELD_OUT)
    return root


def config_for(workspace: Path, name: str, *, train: str = "train.jsonl") -> dict:
    return {
        "name": name,
        "model": str(workspace / "tiny-spacet"),
        "data": {
            "train": str(workspace / train),
            "eval": str(workspace / "held_out.jsonl"),
            "databases": {"music": {"url": f"sqlite:///{workspace / 'music.sqlite'}"}},
        },
        "optim": {
            "epochs": EPOCHS, "batch_size": BATCH, "head_learning_rate": 5e-3, "backbone_learning_rate": 1e-4,
            "warmup_ratio": 0.0,
        },
        "scaling": {"num_workers": 1, "resources_per_worker": {"CPU": 1}},
        "storage_path": str(workspace / "runs"),
        "output_dir": str(workspace / "models"),
    }


def write_config(workspace: Path, config: dict) -> Path:
    path = workspace / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    # address="local": a Ray of this test's own, never one another process started on the machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="text2sql-spacet-tests")
    yield
    ray.shutdown()


def test_the_action_names_are_modelscopes() -> None:
    from modelscope.preprocessors.nlp.space_T_cn.fields.struct import Constant

    assert list(ACTIONS) == Constant().action_ops


def test_records_become_the_trainers_items(workspace, tmp_path) -> None:
    config = SpaceTTrainingConfig.model_validate(config_for(workspace, "items"))
    examples = load_examples(config, workspace / "tiny-spacet", tmp_path)
    assert len(examples.train) == len(TRAIN) and len(examples.held_out) == len(HELD_OUT)
    first, count, follow_up, inline = examples.train[0], examples.train[4], examples.train[5], examples.train[6]
    # concert: concert_id 0, singer_id 1, city 2, year 3, and 4 the empty column; 北京 is question tokens 0..1
    assert first["table_id"] == "concert" and first["action"] == [ACTIONS.index("firstTurn")]
    assert first["sql"] == {"sel": [0], "agg": [0], "cond_conn_op": 0, "conds": [[2, 2, "北京"]]}
    assert first["wvi_corenlp"] == [[0, 1]] and first["history_sql"] is None
    # no condition: ModelScope's own form of it, and nothing to point at
    assert count["sql"]["sel"] == [4] and count["sql"]["agg"] == [4]
    assert count["sql"]["conds"] == [[4, 2, "Nulll"]] and count["wvi_corenlp"] == [[-100, -100]]
    assert follow_up["history_sql"]["conds"] == [[2, 2, "北京"]] and follow_up["action"] == [ACTIONS.index("change_cond")]
    assert follow_up["wvi_corenlp"] == [[0, 1]]
    assert inline["table_id"] == "fund" and inline["header_tok"][-1] == ["空", "列"]

    # without a held-out file: a seeded share of the records, or (none) the epochs scored on the training records
    split = config.model_copy(update={"data": config.data.model_copy(update={"eval": None, "eval_fraction": 0.3})})
    examples = load_examples(split, workspace / "tiny-spacet", tmp_path)
    assert (len(examples.train), len(examples.held_out), examples.scored_on_train) == (5, 2, False)
    none = config.model_copy(update={"data": config.data.model_copy(update={"eval": None})})
    examples = load_examples(none, workspace / "tiny-spacet", tmp_path)
    assert examples.held_out == examples.train and examples.held_out is not examples.train and examples.scored_on_train


def test_bad_lines_are_named_by_line_and_stop_the_job_before_any_worker(workspace, caplog) -> None:
    lines = [
        TRAIN[0],
        '{"question": "北京有哪些演唱会", "table": ',
        {"database": "music", "table": "concert", "question": "北京有哪些演唱会", "sql": "SELECT venue FROM concert"},
        {"database": "music", "table": "concert", "question": "有哪些演唱会", "sql": "SELECT concert_id FROM concert WHERE city = '北京'"},
        {"database": "music", "table": "concert", "question": "上海的呢", "history": [FIRST], "sql": "SELECT concert_id FROM concert"},
        {"database": "music", "table": "venue", "question": "北京有哪些演唱会", "sql": "SELECT 1"},
        {"database": "music", "table": "concert", "question": "北京有哪些演唱会", "query": {"sel": [9], "agg": [0], "conds": [[2, 7, "北京"]]}},
        {"database": "shop", "table": "orders", "question": "北京", "sql": "SELECT 1"},
        {"table": FUND, "question": "北京的基金", "query": {"sel": [0, 1], "agg": [0], "conds": []}},
    ]
    write_jsonl(workspace / "bad.jsonl", lines)
    config = SpaceTTrainingConfig.model_validate(config_for(workspace, "bad", train="bad.jsonl"))
    with pytest.raises(DataError) as structural:
        load_examples(config, workspace / "tiny-spacet", workspace / "bad-tables")
    bad = workspace / "bad.jsonl"
    problems = structural.value.problems
    assert [p.split(": ", 1)[0] for p in problems] == [f"{bad}:{n}" for n in (2, 3, 5, 6, 7, 8, 9)]
    assert "not JSON" in problems[0]
    assert "'venue' is not a column of concert" in problems[1]
    assert "names its 'action'" in problems[2]
    assert "table 'venue' is not in database 'music'; its tables: concert, singer" in problems[3]
    assert "query.sel[0]: there is no column 9" in problems[4] and "query.conds[0]: operator 7" in problems[4]
    assert "unknown database 'shop'; configured databases: music" in problems[5]
    assert "sel has 2 columns but agg 1" in problems[6]

    # line 4 passes the structural checks; its value is not in the question, which the tokenizer pass finds
    write_jsonl(bad, [TRAIN[0], lines[3]])
    with pytest.raises(DataError) as values:
        load_examples(config, workspace / "tiny-spacet", workspace / "bad-tables")
    assert values.value.problems == [
        f"{bad}:2: the condition city == '北京' has a value that is not in the question (as SPACE-T's tokenizer "
        "splits it: 有 哪 些 演 唱 会); SPACE-T copies values from the question"
    ]

    # the command: exit code 2, the line named, no run started
    assert main(["--config", str(write_config(workspace, config_for(workspace, "bad", train="bad.jsonl")))]) == 2
    assert f"{bad}:2: the condition city == '北京'" in caplog.text
    assert not (workspace / "runs" / "bad").exists()


def test_a_job_fine_tunes_and_the_engine_answers_with_the_result(workspace, ray_cluster, tmp_path) -> None:
    config = config_for(workspace, "spacet-music")
    path = write_config(workspace, config)
    assert main(["--config", str(path)]) == 0

    # Ray Train kept the run's checkpoint: a loadable model directory
    checkpoints = [p for p in (workspace / "runs" / "spacet-music").glob("checkpoint_*") if p.is_dir()]
    assert len(checkpoints) == 1 and (checkpoints[0] / "pytorch_model.bin").is_file()

    model = workspace / "models" / "spacet-music"
    assert {"configuration.json", "vocab.txt", "pytorch_model.bin", METADATA} <= {p.name for p in model.iterdir()}
    metadata = json.loads((model / METADATA).read_text())
    assert metadata["weights_sha256"] != metadata["model_weights_sha256"]  # the weights were trained
    metrics = metadata["metrics"]
    steps_per_epoch = -(-len(TRAIN) // BATCH)
    assert metrics["epochs"] == EPOCHS and metrics["steps"] == EPOCHS * steps_per_epoch
    assert metrics["examples"] == len(TRAIN) and metrics["held_out"] == len(HELD_OUT)
    scores = metrics["epoch_scores"]
    assert [e["epoch"] for e in scores] == [1, 2, 3] and scores[-1]["train_loss"] < scores[0]["train_loss"]

    # a second run of the same name is refused: ModelScope's trainer cannot continue one
    assert main(["--config", str(path)]) == 2

    # the SPACE-T engine loads the directory and answers over the database
    database = DatabaseConfig(url=f"sqlite:///{workspace / 'music.sqlite'}")
    context = SchemaContext(
        schema_=introspect(database.resolve_url()), dialect="sqlite", database="music", database_dialect="sqlite",
        target=database.execution_target(), source=database.execution_target(),
    )
    tables = TableExports().export(context, TableExportPolicy(max_rows_per_table=100, refresh_s=60)).tables
    engine = ModelScopeTableQaEngine(model, ModelScopeTableQaSettings(), num_threads=1, cache_dir=tmp_path)
    asyncio.run(engine.start())
    answer = asyncio.run(engine.answer(FIRST["question"], tables, None))
    table = tables.table(answer.query.table)
    assert table is not None
    sql = render_sql(answer.query, table, "sqlite")
    assert validate_sql(sql, dialect="sqlite", schema=context.schema_).valid, sql
    # What it learned in six steps (seeded, one thread): the trained question's condition, its value copied
    # from the question. The random model it started from answers `"city" < '北' AND "city" > '北'`.
    assert answer.query.table == "concert" and (2, 2, "北京") in answer.query.conds, sql
