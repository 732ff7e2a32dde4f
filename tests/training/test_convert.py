"""Converters: Spider's layout and question/SQL pairs become loadable training JSONL; refused gold SQL is reported."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

from bench.bench_accuracy import spider_train_store
from deployments.databases import DatabaseConfig
from deployments.schema_resolver import SchemaResolver
from tests.training.conftest import build_shop
from text2sql.examples import ExampleIndex, load_examples
from training.convert import ConvertError, convert_pairs, convert_spider, dropped_report, main
from training.jsonl import DataError
from training.records import load_records

QUESTIONS = [
    {"db_id": "shop", "question": "How many customers are there?", "query": "SELECT COUNT(*) FROM customers"},
    {"db_id": "shop", "question": "List the emails.", "query": "SELECT email FROM customers"},
    # Spider's way: a double-quoted string, two spaces around the operators.
    {"db_id": "zoo", "question": "Which animals but Rex are older than 3?",
     "query": 'SELECT name FROM animals WHERE age  >  3 AND name != "Rex"'},
]
STANDARD_ZOO_SQL = "SELECT name FROM animals WHERE age > 3 AND name <> 'Rex'"


def build_spider(root: Path) -> Path:
    """A Spider-shaped split: train_spider.json, tables.json, database/<db_id>/<db_id>.sqlite (2 databases)."""
    root.mkdir(parents=True)
    (root / "train_spider.json").write_text(json.dumps(QUESTIONS))
    (root / "tables.json").write_text(json.dumps([{"db_id": "shop"}, {"db_id": "zoo"}]))
    build_shop(root / "database" / "shop" / "shop.sqlite")
    zoo = root / "database" / "zoo" / "zoo.sqlite"
    zoo.parent.mkdir(parents=True)
    with sqlite3.connect(zoo) as connection:
        connection.executescript("CREATE TABLE animals (id INTEGER PRIMARY KEY, name TEXT, age INT);"
                                 "INSERT INTO animals VALUES (1, 'Kiwi', 2), (2, 'Otter', 5);")
    connection.close()
    return root


def test_spider_questions_become_records_with_the_served_schema_and_the_refused_one_is_reported(tmp_path):
    spider = build_spider(tmp_path / "spider" / "train")
    conversion = convert_spider(spider)
    assert [r.question for r in conversion.records] == [QUESTIONS[0]["question"], QUESTIONS[2]["question"]]
    assert [(d.index, d.where, d.kind) for d in conversion.dropped] == [(1, "shop", "invalid_sql")]
    assert "'email'" in conversion.dropped[0].reason
    shop = conversion.records[0]
    served = SchemaResolver({"shop": DatabaseConfig(url=f"sqlite:///{spider / 'database/shop/shop.sqlite'}")}).schema("shop")
    assert shop.schema_ == served and shop.schema_.name == "shop" and shop.dialect == "sqlite"
    assert shop.schema_.table("customers").column("name").samples == ["Ada", "Grace", "Linus"]
    report = dropped_report(conversion)
    assert report.startswith("dropped 1 of 3 questions") and "#1 (shop): " in report


def test_the_spider_cli_writes_lines_the_loader_accepts_and_reports_the_dropped(tmp_path, caplog):
    spider = build_spider(tmp_path / "spider" / "train")
    out = tmp_path / "out" / "train.jsonl"
    with caplog.at_level(logging.INFO, logger="training.convert"):
        assert main(["spider", "--spider-dir", str(spider), "--split", "train", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["sql"] for line in lines] == [QUESTIONS[0]["query"], STANDARD_ZOO_SQL]
    assert lines[1]["schema"]["name"] == "zoo" and "database" not in lines[1]
    assert [r.question for r in load_records(out)] == [QUESTIONS[0]["question"], QUESTIONS[2]["question"]]
    assert "dropped 1 of 3 questions" in caplog.text and "#1 (shop)" in caplog.text
    assert "wrote 1 gold queries in standard SQL (same rows); kept 0 as written" in caplog.text


def test_examples_writes_a_store_of_standard_sql_that_the_pipeline_retrieves_from(tmp_path):
    spider = build_spider(tmp_path / "spider" / "train")
    store = tmp_path / "examples.jsonl"
    assert main(["spider", "--spider-dir", str(spider), "--examples", "--out", str(store)]) == 0
    lines = [json.loads(line) for line in store.read_text().splitlines()]
    assert lines == [
        {"question": QUESTIONS[0]["question"], "sql": QUESTIONS[0]["query"]},
        {"question": QUESTIONS[2]["question"], "sql": STANDARD_ZOO_SQL},
    ]
    nearest = ExampleIndex(load_examples(store)).nearest("Which animals are older than 4?", 1)
    assert [pair.sql for pair in nearest] == [STANDARD_ZOO_SQL]


def test_the_accuracy_benchmarks_store_is_built_once_from_train_and_never_from_dev(tmp_path, monkeypatch):
    build_spider(tmp_path / "spider" / "train")
    store = spider_train_store(tmp_path / "spider", cache_dir=tmp_path / "cache")
    assert [json.loads(line)["sql"] for line in store.read_text().splitlines()][-1] == STANDARD_ZOO_SQL
    monkeypatch.setattr("bench.bench_accuracy.convert_spider", lambda *a, **k: pytest.fail("rebuilt the store"))
    assert spider_train_store(tmp_path / "spider", cache_dir=tmp_path / "cache") == store
    with pytest.raises(SystemExit, match="evaluation set"):
        spider_train_store(tmp_path / "spider" / "dev", cache_dir=tmp_path / "cache")


def test_a_rewrite_that_changes_the_rows_is_not_kept(tmp_path, monkeypatch):
    spider = build_spider(tmp_path / "spider" / "train")
    monkeypatch.setattr("training.convert.standard_sql", lambda sql, schema, dialect: sql.replace("age  >  3", "age > 1"))
    conversion = convert_spider(spider)
    assert [r.sql for r in conversion.records] == [QUESTIONS[0]["query"], QUESTIONS[2]["query"]]
    assert (conversion.rewritten, conversion.kept_as_written) == (0, 1)


def test_a_missing_database_file_drops_its_questions_and_says_so(tmp_path):
    spider = build_spider(tmp_path / "spider" / "train")
    (spider / "database" / "zoo" / "zoo.sqlite").unlink()
    conversion = convert_spider(spider)
    assert [(d.index, d.kind) for d in conversion.dropped] == [(1, "invalid_sql"), (2, "no_database")]
    assert "their database file is missing" in dropped_report(conversion)


def test_limit_draws_a_seeded_sample_in_file_order(tmp_path):
    spider = build_spider(tmp_path / "spider" / "train")
    first, again = convert_spider(spider, limit=2, seed=3), convert_spider(spider, limit=2, seed=3)
    drawn = sorted([*(r.question for r in first.records), *(QUESTIONS[d.index]["question"] for d in first.dropped)],
                   key=[q["question"] for q in QUESTIONS].index)
    assert first.total == 2 and len(set(drawn)) == 2
    assert [r.question for r in first.records] == [r.question for r in again.records]


def test_the_cli_refuses_an_evaluation_set(tmp_path, caplog):
    dev = build_spider(tmp_path / "spider" / "dev")
    out = tmp_path / "out.jsonl"
    assert main(["spider", "--spider-dir", str(dev), "--out", str(out)]) == 2
    assert "evaluation set" in caplog.text and not out.exists()
    with pytest.raises(ConvertError, match="evaluation set"):
        convert_pairs("sqlite:///x.db", tmp_path / "sql-eval" / "pairs.json")


def test_pairs_on_a_database_become_records_named_as_configured(shop_db, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        json.dumps({"question": "Total of all orders?", "sql": "SELECT SUM(total) FROM orders"}) + "\n\n"
        + json.dumps({"question": "Phone numbers?", "sql": "SELECT phone FROM customers"}) + "\n"
    )
    conversion = convert_pairs(f"sqlite:///{shop_db}", pairs, name="shop_eu")
    assert [r.sql for r in conversion.records] == ["SELECT SUM(total) FROM orders"]
    assert conversion.records[0].schema_.name == "shop_eu"
    assert [(d.index, d.kind) for d in conversion.dropped] == [(3, "invalid_sql")]
    assert convert_pairs(f"sqlite:///{shop_db}", pairs).records[0].schema_.name == "shop"


def test_the_pairs_cli_writes_a_loadable_file_from_a_json_list(shop_db, tmp_path):
    pairs = tmp_path / "pairs.json"
    pairs.write_text(json.dumps([{"question": "Names?", "sql": "SELECT name FROM customers"}]))
    out = tmp_path / "pairs_out.jsonl"
    assert main(["pairs", "--database-url", f"sqlite:///{shop_db}", "--pairs", str(pairs), "--out", str(out)]) == 0
    assert [r.sql for r in load_records(out)] == ["SELECT name FROM customers"]
    store = tmp_path / "store.jsonl"
    assert main(["pairs", "--database-url", f"sqlite:///{shop_db}", "--pairs", str(pairs), "--examples",
                 "--out", str(store)]) == 0
    assert [(p.question, p.sql) for p in load_examples(store)] == [("Names?", "SELECT name FROM customers")]


def test_a_pair_without_sql_is_an_error_with_its_line(shop_db, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"question": "Names?", "sql": "SELECT name FROM customers"}) + "\n"
                     + json.dumps({"question": "Countries?"}) + "\n")
    with pytest.raises(DataError, match=f"{pairs}:2: needs strings"):
        convert_pairs(f"sqlite:///{shop_db}", pairs)
