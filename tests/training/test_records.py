"""Loading training JSONL: good lines load, and every bad line is reported with its file and line number."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import deployments.schema_resolver
from deployments.databases import DatabaseConfig
from text2sql.schema import DatabaseSchema
from training.jsonl import DataError
from training.records import TrainingRecord, data_sha256, load_records

SHOP_DDL = "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, country TEXT);"


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


@pytest.fixture
def databases(shop_db: Path) -> dict[str, DatabaseConfig]:
    return {"shop": DatabaseConfig(url=f"sqlite:///{shop_db}")}


def load_error(path: Path, databases: dict[str, DatabaseConfig] | None = None) -> str:
    with pytest.raises(DataError) as raised:
        load_records(path, databases=databases)
    return str(raised.value)


def test_a_good_file_loads_every_kind_of_record(tmp_path, databases):
    structured = {"tables": [{"name": "t", "columns": [{"name": "a", "type": "INT"}]}]}
    path = write_jsonl(tmp_path / "good.jsonl", [
        {"question": "How many customers?", "database": "shop", "sql": "SELECT COUNT(*) FROM customers"},
        "",
        {"question": "Names in the UK?", "schema": SHOP_DDL, "sql": "SELECT name FROM customers WHERE country = 'UK'",
         "evidence": "UK is the United Kingdom", "dialect": "sqlite"},
        {"question": "And in the USA?", "database": "shop", "sql": "SELECT name FROM customers WHERE country = 'USA'",
         "history": [{"question": "Names in the UK?", "sql": "SELECT name FROM customers WHERE country = 'UK'"}]},
        {"question": "Largest a?", "schema": structured, "sql": "SELECT MAX(a) FROM t"},
    ])
    records = load_records(path, databases=databases)
    assert [r.question for r in records] == ["How many customers?", "Names in the UK?", "And in the USA?", "Largest a?"]
    assert records[0].database == "shop" and records[0].schema_ is None
    assert records[1].schema_ == SHOP_DDL and records[1].evidence == "UK is the United Kingdom"
    assert records[2].history[0].question == "Names in the UK?"
    assert isinstance(records[3].schema_, DatabaseSchema) and records[3].schema_.tables[0].name == "t"


def test_bad_json_names_the_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        {"question": "q", "schema": SHOP_DDL, "sql": "SELECT name FROM customers"},
        '{"question": "q", "schema": ',
    ])
    message = load_error(path)
    assert message.startswith(f"{path}:2: not JSON")


def test_a_missing_sql_names_the_file_line_and_field(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "schema": SHOP_DDL}])
    message = load_error(path)
    assert message.startswith(f"{path}:1: ") and "sql: Field required" in message


def test_gold_sql_with_an_unknown_column_fails_with_the_validators_message(tmp_path, databases):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        {"question": "q", "database": "shop", "sql": "SELECT name FROM customers"},
        {"question": "q", "schema": SHOP_DDL, "sql": "SELECT name FROM customers"},
        {"question": "Emails?", "database": "shop", "sql": "SELECT email FROM customers"},
    ])
    message = load_error(path, databases)
    assert message.startswith(f"{path}:3: gold SQL fails validation: ") and "'email'" in message


def test_an_unknown_database_lists_the_configured_ones(tmp_path, databases):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "database": "warehouse", "sql": "SELECT 1"}])
    message = load_error(path, databases)
    assert message.startswith(f"{path}:1: unknown database 'warehouse'") and "shop" in message


def test_schema_and_database_are_exclusive_and_one_is_required(tmp_path, databases):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        {"question": "q", "schema": SHOP_DDL, "database": "shop", "sql": "SELECT 1"},
        {"question": "q", "sql": "SELECT 1"},
    ])
    message = load_error(path, databases)
    assert f"{path}:1: " in message and f"{path}:2: " in message and "exactly one of 'schema' or 'database'" in message


def test_ddl_that_does_not_parse_is_an_error_not_raw_text(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "schema": "CREATE TABLE (", "sql": "SELECT 1"}])
    assert load_error(path).startswith(f"{path}:1: schema is not DDL that parses")


def test_every_bad_line_is_listed_first_one_first(tmp_path, databases):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        {"question": "q", "database": "shop", "sql": "SELECT nope FROM customers"},
        {"question": "fine", "database": "shop", "sql": "SELECT name FROM customers"},
        "not json",
    ])
    with pytest.raises(DataError) as raised:
        load_records(path, databases=databases)
    assert [p.split(": ")[0] for p in raised.value.problems] == [f"{path}:1", f"{path}:3"]


def test_each_named_database_is_introspected_once(tmp_path, databases, monkeypatch):
    calls = []
    real = deployments.schema_resolver.introspect
    monkeypatch.setattr(deployments.schema_resolver, "introspect", lambda *a, **k: calls.append(a) or real(*a, **k))
    path = write_jsonl(tmp_path / "good.jsonl", [
        {"question": f"q{i}", "database": "shop", "sql": "SELECT total FROM orders"} for i in range(4)
    ])
    assert len(load_records(path, databases=databases)) == 4
    assert len(calls) == 1


def test_a_database_that_cannot_be_read_fails_each_of_its_lines_and_is_tried_once(tmp_path, monkeypatch):
    calls = []
    real = deployments.schema_resolver.introspect
    monkeypatch.setattr(deployments.schema_resolver, "introspect", lambda *a, **k: calls.append(a) or real(*a, **k))
    missing = {"gone": DatabaseConfig(url=f"sqlite:///{tmp_path / 'gone.db'}")}
    path = write_jsonl(tmp_path / "bad.jsonl", [
        {"question": "q", "database": "gone", "sql": "SELECT 1"},
        {"question": "q", "database": "gone", "sql": "SELECT 1"},
    ])
    with pytest.raises(DataError) as raised:
        load_records(path, databases=missing)
    assert [p.split(": ")[0] for p in raised.value.problems] == [f"{path}:1", f"{path}:2"]
    assert "'gone'" in raised.value.problems[0] and len(calls) == 1


def test_an_empty_file_is_an_error(tmp_path):
    assert "no training records" in load_error(write_jsonl(tmp_path / "empty.jsonl", ["", "  "]))


def test_the_record_accepts_schema_by_alias_and_rejects_unknown_fields():
    record = TrainingRecord.model_validate({"question": "q", "schema": SHOP_DDL, "sql": "SELECT 1"})
    assert record.schema_ == SHOP_DDL
    with pytest.raises(ValueError, match="extra"):
        TrainingRecord.model_validate({"question": "q", "schema": SHOP_DDL, "sql": "SELECT 1", "answer": 1})
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        TrainingRecord.model_validate({"question": "q", "schema": SHOP_DDL, "sql": "SELECT 1", "dialect": "oracle9"})


def test_data_sha256_is_the_files_digest(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"a": 1}\n')
    assert data_sha256(path) == hashlib.sha256(b'{"a": 1}\n').hexdigest()
