"""SPACE-T's structured query as SQL and back: what a table-QA answer runs as, and how a follow-up's history
reaches the model (`history_sql`). Pure sqlglot, no model."""

from __future__ import annotations

import sqlite3

import pytest

from text2sql.schema.ddl import parse_ddl
from text2sql.table_qa import (
    NotATableQuery,
    StructuredQuery,
    column_kind,
    qa_tables,
    query_from_sql,
    render_sql,
)

DDL = """
CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT, country TEXT, age INTEGER);
CREATE TABLE concert (concert_id INTEGER PRIMARY KEY, singer_id INTEGER, city TEXT, year INTEGER, held DATE);
"""
SINGERS = [[1, "王菲", "中国", 55], [2, "Adele", "英国", 36], [3, "周杰伦", "中国", 45]]
TABLES = qa_tables(parse_ddl(DDL), {"singer": SINGERS}, label="music")
SINGER = TABLES.table("singer")
EMPTY = len(SINGER.columns)  # SPACE-T's "empty column" index


def query(**fields) -> StructuredQuery:
    return StructuredQuery(**{"table": "singer", "cond_conn_op": 0, **fields})


def run(sql: str) -> list[tuple]:
    with sqlite3.connect(":memory:") as conn:
        conn.executescript(DDL)
        conn.executemany("INSERT INTO singer VALUES (?, ?, ?, ?)", SINGERS)
        return conn.execute(sql).fetchall()


def test_selection_aggregation_and_a_text_condition_run_on_the_table() -> None:
    q = query(sel=[1, 3], agg=[0, 0], conds=[(2, 2, "中国")])
    sql = render_sql(q, SINGER, "sqlite")
    assert sql == """SELECT "name", "age" FROM "singer" WHERE "country" = '中国'"""
    assert run(sql) == [("王菲", 55), ("周杰伦", 45)]


def test_number_columns_compare_as_numbers_and_conditions_join_by_the_connector() -> None:
    q = query(sel=[1], agg=[0], conds=[(3, 0, "40"), (2, 2, "英国")], cond_conn_op=2)
    sql = render_sql(q, SINGER, "sqlite")
    assert "\"age\" > 40 OR \"country\" = '英国'" in sql
    assert sorted(run(sql)) == [("Adele",), ("周杰伦",), ("王菲",)]


def test_aggregations_count_over_the_empty_column_and_ordering_with_a_limit() -> None:
    counted = render_sql(query(sel=[EMPTY], agg=[4], conds=[(EMPTY, 2, "Nulll")]), SINGER, "sqlite")
    assert counted == 'SELECT COUNT(*) FROM "singer"' and run(counted) == [(3,)]
    averaged = render_sql(query(sel=[3, 2], agg=[1, 7], conds=[]), SINGER, "sqlite")
    assert sorted(run(averaged)) == [(36.0, "英国"), (50.0, "中国")]
    # SPACE-T reads a limit from an ordering's value: "最" (the most) is one row.
    oldest = render_sql(query(sel=[1], agg=[0], conds=[(3, 5, "最")]), SINGER, "sqlite")
    assert oldest.endswith('ORDER BY "age" DESC LIMIT 1') and run(oldest) == [("王菲",)]


def test_rendered_for_the_database_dialect() -> None:
    q = query(sel=[1], agg=[2], conds=[(2, 3, "中国")])
    assert render_sql(q, SINGER, "mysql") == "SELECT MAX(`name`) FROM `singer` WHERE `country` <> '中国'"


@pytest.mark.parametrize(
    "q",
    [
        query(sel=[1, 3], agg=[0, 0], conds=[(2, 2, "中国")], cond_conn_op=0),
        query(sel=[0, 3], agg=[4, 5], conds=[(3, 0, "30"), (2, 3, "英国")], cond_conn_op=1),
        query(sel=[2], agg=[0], conds=[(3, 1, "50"), (2, 2, "中国")], cond_conn_op=2),
        query(sel=[1], agg=[0], conds=[(3, 4, "3")], cond_conn_op=0),
        query(sel=[EMPTY], agg=[4], conds=[], cond_conn_op=0),
        query(sel=[2, 3], agg=[7, 1], conds=[], cond_conn_op=0),
    ],
)
def test_sql_reads_back_into_the_same_query(q: StructuredQuery) -> None:
    for dialect in ("sqlite", "postgres", "mysql"):
        assert query_from_sql(render_sql(q, SINGER, dialect), TABLES, dialect) == q


def test_a_history_turn_written_by_hand_reads_as_spacet_history() -> None:
    read = query_from_sql("select name, count(*) from Singer where age < 50 and country = '中国'", TABLES, "sqlite")
    assert read.to_spacet() == {
        "sel": [1, EMPTY], "agg": [0, 4], "conds": [[3, 1, "50"], [2, 2, "中国"]], "cond_conn_op": 1, "from": ["singer"],
    }


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT s.name FROM singer s JOIN concert c ON s.singer_id = c.singer_id", "JOIN"),
        ("SELECT name FROM singer WHERE age > 1 AND (country = 'a' OR country = 'b')", "mixes AND and OR"),
        ("SELECT name FROM singer WHERE country LIKE '中%'", "not a comparison"),
        ("SELECT name FROM band", "not one of the database's tables"),
        ("SELECT nickname FROM singer", "'nickname' is not a column"),
        ("SELECT name FROM (SELECT name FROM singer)", "one table"),
        ("DELETE FROM singer", "not a single SELECT"),
        ("SELECT name FROM singer GROUP BY name HAVING COUNT(*) > 1", "HAVING"),
        ("SELECT FROM WHERE", "does not parse"),
    ],
)
def test_sql_spacet_cannot_hold_is_refused_with_the_reason(sql: str, reason: str) -> None:
    with pytest.raises(NotATableQuery, match=reason):
        query_from_sql(sql, TABLES, "sqlite")


def test_spacet_dicts_are_normalised_and_checked() -> None:
    merged = {"sel": [1], "agg": [0], "conds": [[7, 2, "Null", "Null"]], "cond_conn_op": 0, "from": ["singer"]}
    assert StructuredQuery.from_spacet(merged).conds == [(7, 2, "Null")]
    # SPACE-T's own post-processing may drop a selected column and leave its aggregation: paired as its SQL pairs them.
    dropped = {"sel": [0], "agg": [3, 10, 10], "conds": [], "cond_conn_op": 1, "from": ["singer"]}
    assert StructuredQuery.from_spacet(dropped).agg == [3]
    with pytest.raises(ValueError, match="aggregations"):
        StructuredQuery(table="singer", sel=[1, 2], agg=[0], conds=[])


def test_tables_carry_kinds_rows_and_a_content_key() -> None:
    assert [column_kind(t) for t in ("INTEGER", "NUMERIC(10,2)", "DOUBLE", "DATE", "TIMESTAMP", "VARCHAR(5)", "")] == [
        "number", "number", "number", "date", "date", "text", "text",
    ]
    concert = TABLES.table("CONCERT")
    assert [c.kind for c in concert.columns] == ["number", "number", "text", "number", "date"]
    assert concert.rows == [] and SINGER.rows == SINGERS and SINGER.columns[0].primary_key
    assert TABLES.key.startswith("music-")
    changed = qa_tables(parse_ddl(DDL), {"singer": SINGERS[:2]}, label="music")
    assert changed.key != TABLES.key
    assert qa_tables(parse_ddl(DDL), {"singer": SINGERS}, label="music").key == TABLES.key
