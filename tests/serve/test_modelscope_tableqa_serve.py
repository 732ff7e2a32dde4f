"""`backend: modelscope_tableqa` served by Ray Serve: a tiny random SPACE-T (tests/engines/spacet_model.py) built
from its config like any served model, beside nothing else. /v1/sql/generate with a configured two-table SQLite
database answers with SQL and SPACE-T's structured query, runs it, and follows up when the first answer comes
back as history; the warm start has read and indexed the database before the first question; the OpenAI API
refuses it with a 400, as do requests it cannot answer.
Needs the `[modelscope]` extra (skipped without it).
"""

from __future__ import annotations

import sqlite3

import pytest
import requests

pytest.importorskip("torch")
pytest.importorskip("modelscope")
pytest.importorskip("datasets", reason="modelscope's pipelines import datasets: install the [modelscope] extra")

from deployments.builder import build_app  # noqa: E402
from tests.engines.spacet_model import write_tiny_spacet  # noqa: E402

MODEL = "spacet"
DDL = """
CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);
CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, singer_id INTEGER, city TEXT, year INTEGER);
"""
TABLES = {
    "singer": ["singer_id", "name", "country", "age"],
    "concert": ["concert_id", "singer_id", "city", "year"],
}
WORDS = [*"北京上海伦敦中国英国王菲周杰伦有哪些演唱会的呢歌手年龄多少", "singer", "concert", "name", "country", "age", "city", "year", "id", "_"]


@pytest.fixture(scope="module")
def base_url(ray_serve, tmp_path_factory) -> str:
    model_dir = write_tiny_spacet(tmp_path_factory.mktemp("spacet"), words=WORDS)
    database = tmp_path_factory.mktemp("db") / "music.sqlite"
    with sqlite3.connect(database) as conn:
        conn.executescript(DDL)
        conn.executemany(
            "INSERT INTO singer VALUES (?, ?, ?, ?)", [(1, "王菲", "中国", 55), (2, "Adele", "英国", 36)]
        )
        conn.executemany("INSERT INTO concert VALUES (?, ?, ?, ?)", [(1, 1, "北京", 2019), (2, 2, "伦敦", 2024)])
    args = {
        "databases": {"music": {"url": f"sqlite:///{database}"}},
        "models": [
            {
                "name": MODEL,
                "backend": "modelscope_tableqa",
                "source": str(model_dir),
                "engine": {"num_threads": 1, "tables_cache_dir": str(tmp_path_factory.mktemp("tables"))},
                "ray_actor_options": {"num_cpus": 1},
            }
        ],
    }
    return ray_serve(build_app(args))


def generate(base_url: str, **body) -> requests.Response:
    return requests.post(f"{base_url}/v1/sql/generate", json={"model": MODEL, **body}, timeout=300)


def check_answer(body: dict) -> None:
    query = body["structured_query"]
    table = query["from"][0]
    assert table in TABLES and body["tables_used"] == [table], body
    assert all(0 <= s <= len(TABLES[table]) for s in query["sel"]) and len(query["agg"]) == len(query["sel"])
    assert body["sql"].startswith("SELECT") and f'"{table}"' in body["sql"], body["sql"]
    assert body["success"] is True and body["validated"] is True, body
    assert isinstance(body["rows"], list) and body["columns"], body  # it ran on the database


def test_warm_start_read_and_indexed_the_database(base_url: str) -> None:
    from ray import serve

    stats = serve.get_deployment_handle(MODEL, app_name="text2sql").stats.remote().result()
    assert set(stats["warmed"]) == {"music"} and stats["requests_served"] == 0, stats


def test_a_conversation_of_two_turns_with_sql_and_the_structured_query(base_url: str) -> None:
    first = generate(base_url, question="北京有哪些演唱会", database="music", execute=True)
    assert first.status_code == 200, first.text
    first_body = first.json()
    check_answer(first_body)
    assert first_body["model"] == MODEL and first_body["history_used"] == 0

    history = [{"question": "北京有哪些演唱会", "sql": first_body["sql"]}]
    second = generate(base_url, question="伦敦的呢", database="music", execute=True, history=history)
    assert second.status_code == 200, second.text
    second_body = second.json()
    check_answer(second_body)
    assert second_body["history_used"] == 1


def test_requests_it_cannot_answer_are_400s_naming_the_problem(base_url: str) -> None:
    no_tables = generate(base_url, question="有哪些歌手")
    assert no_tables.status_code == 400 and no_tables.json()["error"]["param"] == "database", no_tables.text
    join = "SELECT s.name FROM singer s JOIN concert c ON s.singer_id = c.singer_id"
    history = generate(base_url, question="伦敦的呢", database="music", history=[{"question": "q", "sql": join}])
    assert history.status_code == 400 and "JOIN" in history.json()["error"]["message"], history.text
    chat = requests.post(
        f"{base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "有哪些歌手"}]},
        timeout=60,
    )
    assert chat.status_code == 400 and "/v1/sql/generate" in chat.json()["error"]["message"], chat.text
    streamed = requests.post(
        f"{base_url}/v1/completions", json={"model": MODEL, "prompt": "SELECT", "stream": True}, timeout=60
    )
    assert streamed.status_code == 400 and streamed.json()["error"]["param"] == "model", streamed.text
