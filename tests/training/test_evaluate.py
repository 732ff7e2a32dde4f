"""training.evaluate: the outcome of each answer, judged by the shared scoring, and the real pipeline in process
with the embedded 0.5B on llama.cpp."""

from __future__ import annotations

import json

import pytest

from tests.training.conftest import build_shop
from training.evaluate import OUTCOMES, InProcessAsker, evaluate, jsonl_questions, markdown_table

DDL = (
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT);\n"
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total REAL);"
)


@pytest.fixture
def questions(tmp_path):
    build_shop(tmp_path / "databases" / "shop" / "shop.sqlite")
    lines = [
        {"question": "How many customers are there?", "database": "shop", "sql": "SELECT COUNT(*) FROM customers"},
        {"question": "List every customer's name.", "database": "shop", "sql": "SELECT name FROM customers"},
        {"question": "What is the total of all orders?", "database": "shop", "sql": "SELECT SUM(total) FROM orders"},
        {"question": "Which customers live in the UK?", "database": "shop", "sql": "SELECT name FROM customers WHERE country = 'UK'"},
        {"question": "How many orders are there?", "database": "shop", "sql": "SELECT COUNT(*) FROM orders"},
    ]
    data = tmp_path / "held_out.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return jsonl_questions(data, databases_dir=tmp_path / "databases")


class ScriptedAsker:
    """Stands in for the model: one answer per question, in order."""

    def __init__(self, answers):
        self.answers = list(answers)

    def ask(self, question):
        return self.answers.pop(0)


def test_every_outcome_is_told_apart(questions):
    answers = [
        {"success": True, "sql": "SELECT COUNT(id) FROM customers"},  # another query, the same result
        {"success": True, "sql": "SELECT country FROM customers"},  # runs, wrong rows
        {"success": True, "sql": "SELECT SUM(total) FROM orders WHERE nope = 1"},  # SQLite refuses it
        {"success": False, "sql": "SELECT nam FROM customers", "attempts": [{"stage": "validate", "code": "unknown_column"}]},
        {"success": False, "sql": "", "attempts": [{"stage": "extract", "code": None}]},
    ]
    evaluation = evaluate(ScriptedAsker(answers), questions, model="scripted")
    assert [d["outcome"] for d in evaluation.details] == list(OUTCOMES)
    assert evaluation.summary()["accuracy"] == pytest.approx(0.2)
    assert "| scripted | 5 | 20.0% (1) | 1 | 1 | 1 | 1 |" in markdown_table([evaluation])


def test_the_served_pipeline_runs_in_process(questions, embedded_model_path):
    asker = InProcessAsker(str(embedded_model_path), adapter=None, urls={"shop": questions[0].url}, max_tokens=64)
    evaluation = evaluate(asker, questions[:2], model="qwen2.5-coder-0.5b")
    assert evaluation.details[0]["outcome"] == "right", evaluation.details
    assert len(evaluation.details) == 2 and all(d["sql"] for d in evaluation.details)
