"""Value linking: an index of a database's text values, matched against the question's words and quotes."""

from __future__ import annotations

import sqlite3

from deployments.databases import DatabaseConfig
from deployments.protocol.sql import SqlGenerateRequest
from deployments.schema_resolver import SchemaResolver
from text2sql.pipeline.settings import PipelineSettings
from text2sql.prompts import PromptInput, get_template
from text2sql.schema.introspect import introspect
from text2sql.schema.values import build_value_index


def shop(tmp_path) -> str:
    path = tmp_path / "shop.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT, country VARCHAR(40), code CHAR(3));
            CREATE TABLE artist (id INTEGER PRIMARY KEY, name TEXT, founded INTEGER);
            INSERT INTO customer VALUES (1, 'Ana', 'Brazil', 'BRA'), (2, 'O''Brien', 'Ireland', 'IRL'),
                                        (3, 'Li', 'United Kingdom', 'GBR'), (4, 'Bo', '1999', 'the');
            INSERT INTO artist VALUES (1, 'AC/DC', 1973), (2, 'Brazil', 1980);
            """
        )
    return f"sqlite:///{path}"


def test_the_question_finds_the_values_it_names_wherever_they_live(tmp_path):
    url = shop(tmp_path)
    index = build_value_index(url, introspect(url), "sqlite")
    rendered = [m.render() for m in index.matches("How many customers from brazil bought AC/DC albums?")]
    # The longer mention first ("ac dc" is two words), then every place that holds 'Brazil'.
    assert rendered[0] == "artist.name = 'AC/DC'"
    assert set(rendered[1:]) == {"customer.country = 'Brazil'", "artist.name = 'Brazil'"}
    assert [m.value for m in index.matches("customers in the united kingdom")] == ["United Kingdom"]
    assert index.matches("Who is 'O'Brien'?")[0].render() == "customer.name = 'O''Brien'"


def test_numbers_short_and_common_words_are_never_linked(tmp_path):
    url = shop(tmp_path)
    index = build_value_index(url, introspect(url), "sqlite")
    assert index.matches("customers who joined in 1999 named Bo of the shop") == []


def test_the_resolver_links_only_when_asked_and_rebuilds_after_a_refresh(tmp_path):
    url = shop(tmp_path)
    resolver = SchemaResolver({"shop": DatabaseConfig(url=url)}, PipelineSettings(value_linking=True))
    linked = resolver.resolve(SqlGenerateRequest(question="customers in Ireland", database="shop"))
    assert linked.value_matches == ["customer.country = 'Ireland'"]
    off = resolver.resolve(SqlGenerateRequest(question="customers in Ireland", database="shop", value_linking=False))
    assert off.value_matches == []
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute("INSERT INTO customer VALUES (5, 'Jo', 'Peru', 'PER')")
    resolver.refresh("shop")
    assert resolver.resolve(SqlGenerateRequest(question="customers in Peru", database="shop")).value_matches == [
        "customer.country = 'Peru'"
    ]


def test_linked_values_sit_just_before_the_question():
    rendered = get_template("qwen-chat").render(PromptInput(
        question="How many customers in Brazil?", schema_text="CREATE TABLE customer (country TEXT);",
        value_matches=["customer.country = 'Brazil'"],
    ))
    user = rendered.messages[-1].content
    assert user.index("CREATE TABLE") < user.index("customer.country = 'Brazil'") < user.index("Question:")
