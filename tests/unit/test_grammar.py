"""The schema-bound SQL grammar: llama.cpp compiles it, it accepts the read-only subset over the schema's
identifiers and nothing else, and it steers the real embedded model to SQL that parses (tests/unit/test_llama_cpp_grammar.py).

Acceptance is checked by llama.cpp's own grammar sampler (tests/unit/gbnf_recognizer.py), fed the
embedded model's vocabulary; those tests skip when llama-cpp-python or the model parts are missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlglot

from text2sql.grammar import build_sql_grammar, cached_sql_grammar
from text2sql.schema import Column, DatabaseSchema, ForeignKey, Table

if TYPE_CHECKING:
    from tests.unit.gbnf_recognizer import GrammarMatcher

EMBEDDED_MODEL = "qwen2.5-coder-0.5b"


def shop_schema() -> DatabaseSchema:
    return DatabaseSchema(
        name="shop",
        tables=[
            Table(
                name="Artist",
                columns=[
                    Column(name="ArtistId", type="INTEGER", primary_key=True),
                    Column(name="Name", type="TEXT"),
                ],
            ),
            Table(
                name="Album",
                columns=[
                    Column(name="AlbumId", type="INTEGER", primary_key=True),
                    Column(name="Title", type="TEXT"),
                    Column(name="ArtistId", type="INTEGER"),
                ],
                foreign_keys=[ForeignKey(columns=["ArtistId"], ref_table="Artist", ref_columns=["ArtistId"])],
            ),
            Table(
                name="Order Details",
                columns=[
                    Column(name="OrderId", type="INTEGER"),
                    Column(name="Unit Price", type="REAL"),
                    Column(name="Quantity", type="INTEGER"),
                    Column(name="order", type="INTEGER"),
                    Column(name="OrderDate", type="TEXT"),
                ],
            ),
        ],
    )


def lowercase_schema() -> DatabaseSchema:
    return DatabaseSchema(
        tables=[
            Table(
                name="customers",
                columns=[
                    Column(name="id"),
                    Column(name="name"),
                    Column(name="created_at"),
                    Column(name="Region"),
                ],
            )
        ]
    )


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    pytest.importorskip("llama_cpp")
    from deployments.embedded_models import EmbeddedModelError, ensure_embedded_model

    try:
        return ensure_embedded_model(EMBEDDED_MODEL, progress=False)
    except EmbeddedModelError as e:
        pytest.skip(f"embedded model not available: {e}")


@pytest.fixture(scope="module")
def matcher(gguf_path: Path) -> Iterator[GrammarMatcher]:
    from tests.unit.gbnf_recognizer import GrammarMatcher

    yield GrammarMatcher(gguf_path)


@pytest.fixture(scope="module")
def sqlite_grammar() -> str:
    return build_sql_grammar(shop_schema(), dialect="sqlite")


# --------------------------------------------------------------------------------------------------
# Compiles


@pytest.mark.parametrize(
    "dialect", ["sqlite", "postgres", "mysql", "duckdb", "tsql", "snowflake", "bigquery"]
)
def test_grammar_compiles_in_llama_cpp(matcher: GrammarMatcher, dialect: str) -> None:
    matcher.compile(build_sql_grammar(shop_schema(), dialect=dialect))


def test_matcher_reports_a_broken_grammar(matcher: GrammarMatcher) -> None:
    from tests.unit.gbnf_recognizer import GrammarCompileError

    with pytest.raises(GrammarCompileError):
        matcher.compile('root ::= ("SELECT"')


# --------------------------------------------------------------------------------------------------
# Accepts the subset over the schema's identifiers (SQLite)

VALID_SQLITE = [
    "SELECT Name FROM Artist",
    "select count(*) from Album a join Artist ar on a.ArtistId = ar.ArtistId where ar.Name = 'AC/DC';",
    "SELECT DISTINCT Artist.Name FROM Artist INNER JOIN Album ON Album.ArtistId = Artist.ArtistId "
    "ORDER BY Artist.Name ASC LIMIT 10 OFFSET 5",
    "SELECT ar.Name, COUNT(DISTINCT al.AlbumId) AS album_count FROM Artist AS ar LEFT JOIN Album AS al "
    "ON al.ArtistId = ar.ArtistId GROUP BY ar.Name HAVING COUNT(*) > 2 ORDER BY COUNT(*) DESC",
    "SELECT Title FROM Album WHERE ArtistId IN (SELECT ArtistId FROM Artist WHERE Name LIKE 'A%') "
    "AND NOT AlbumId BETWEEN 1 AND 10",
    "SELECT Name FROM Artist WHERE EXISTS (SELECT 1 FROM Album WHERE Album.ArtistId = Artist.ArtistId)",
    "SELECT Name FROM Artist WHERE Name IS NOT NULL UNION SELECT Title FROM Album",
    "SELECT Name FROM Artist EXCEPT SELECT Name FROM Artist WHERE ArtistId = 1",
    "SELECT UPPER(Name), LENGTH(Name) * 2 + 1, ROUND(AVG(ArtistId), 2) FROM Artist GROUP BY Name",
    "SELECT CAST(ArtistId AS TEXT) || ' - ' || Name FROM Artist WHERE ArtistId IN (1, 2, 3)",
    'SELECT strftime(\'%Y\', OrderDate) AS year, SUM("Unit Price" * Quantity) FROM "Order Details" GROUP BY 1',
    "SELECT CASE WHEN Quantity > 10 THEN 'bulk' ELSE 'single' END AS \"Order Size\" FROM \"Order Details\"",
    'SELECT "order" FROM "Order Details" WHERE "Unit Price" >= 9.99',
    "SELECT * FROM Album WHERE Title <> 'It''s'",
    "SELECT t.* FROM (SELECT ArtistId, Name FROM Artist) AS t WHERE t.Name = 'x'",
    "SELECT COALESCE(Name, 'unknown') FROM Artist WHERE -ArtistId < 0 ;  ",
    "SELECT Title FROM Album ORDER BY Title DESC NULLS LAST LIMIT 5",
    "SELECT a.Title FROM Album a, Artist b WHERE a.ArtistId = b.ArtistId",
    "SELECT Title FROM Album LIMIT 5, 10",
    "SELECT Title\nFROM Album\n    JOIN Artist USING (ArtistId)\nWHERE Artist.Name = 'Queen'\n",
    'SELECT "Artist"."Name" FROM "Artist" WHERE (ArtistId = 1 OR ArtistId = 2) AND Name != \'\'',
    "SELECT Name FROM Artist AS wherever",  # an alias may start like a keyword
    # An output column's alias in ORDER BY, bare or quoted.
    "SELECT ar.Name, COUNT(*) AS album_count FROM Artist ar JOIN Album al ON al.ArtistId = ar.ArtistId "
    "GROUP BY ar.Name ORDER BY album_count DESC\nLIMIT 5",
    'SELECT Name AS "Artist Name" FROM Artist ORDER BY "Artist Name"',
]


@pytest.mark.parametrize("sql", VALID_SQLITE)
def test_accepts_read_only_sql_over_the_schema(
    matcher: GrammarMatcher, sqlite_grammar: str, sql: str
) -> None:
    result = matcher.match(sqlite_grammar, sql)
    assert result, f"rejected after {result.matched!r} at {result.rejected_piece!r}"
    sqlglot.parse_one(sql, read="sqlite")  # the test queries themselves are real SQLite


# --------------------------------------------------------------------------------------------------
# Rejects everything else

INVALID_SQLITE = {
    "unknown table": "SELECT Name FROM Artists",
    "table in another case": "SELECT Name FROM artist",
    "unknown column": "SELECT Genre FROM Artist",
    "unknown qualified column": "SELECT ar.Genre FROM Artist ar",
    "column of another table": "SELECT Artist.Title FROM Artist",
    "table name as alias": "SELECT Artist.Title FROM Album AS Artist",
    "drop": "DROP TABLE Artist",
    "delete": "DELETE FROM Artist",
    "update": "UPDATE Artist SET Name = 'x'",
    "insert": "INSERT INTO Artist VALUES (1, 'x')",
    "pragma": "PRAGMA table_info(Artist)",
    "two statements": "SELECT Name FROM Artist; SELECT Title FROM Album",
    "select then drop": "SELECT Name FROM Artist; DROP TABLE Artist",
    "name needing quotes, bare": "SELECT Quantity FROM Order Details",
    "reserved column, bare": 'SELECT order FROM "Order Details"',
    "unknown bare name outside ORDER BY": "SELECT COUNT(*) AS n FROM Album WHERE n > 1",
    "LIMIT glued to its number": "SELECT COUNT(*) AS n FROM Album ORDER BY n DESC LIMIT5",
    "quoted unknown name (SQLite reads it as a string)": 'SELECT "Genre" FROM Artist',
    "keyword as alias": "SELECT Name FROM Artist AS where",
    "dangling WHERE": "SELECT Name FROM Artist WHERE",
    "comment": "SELECT Name FROM Artist -- all of them",
    "no FROM": "SELECT 1",
    "CTE": "WITH x AS (SELECT Name FROM Artist) SELECT Name FROM x",
    "prose after the query": "SELECT Name FROM Artist\n```",
    "postgres cast in sqlite": "SELECT ArtistId::text FROM Artist",
}


@pytest.mark.parametrize("sql", INVALID_SQLITE.values(), ids=INVALID_SQLITE.keys())
def test_rejects_anything_else(matcher: GrammarMatcher, sqlite_grammar: str, sql: str) -> None:
    assert not matcher.match(sqlite_grammar, sql)


# --------------------------------------------------------------------------------------------------
# Dialects


def test_postgres_quotes_names_it_would_fold_and_has_its_syntax(matcher: GrammarMatcher) -> None:
    grammar = build_sql_grammar(lowercase_schema(), dialect="postgres")
    for sql in [
        "SELECT name FROM customers WHERE created_at::date > CURRENT_DATE - INTERVAL '7 days'",
        "SELECT EXTRACT(YEAR FROM created_at), COUNT(*) FROM customers GROUP BY 1",
        "SELECT \"Region\" FROM customers WHERE name ILIKE 'a%' ORDER BY id NULLS FIRST",
        "SELECT DATE_TRUNC('month', created_at) AS month FROM customers",
    ]:
        result = matcher.match(grammar, sql)
        assert result, f"{sql!r} rejected after {result.matched!r} at {result.rejected_piece!r}"
    for sql in [
        "SELECT Region FROM customers",  # PostgreSQL would look for region
        "SELECT name FROM customers LIMIT 5, 10",  # not PostgreSQL syntax
        "SELECT strftime('%Y', created_at) FROM customers",  # SQLite's function
    ]:
        assert not matcher.match(grammar, sql), sql


def test_postgres_uppercase_table_needs_quotes(matcher: GrammarMatcher) -> None:
    grammar = build_sql_grammar(shop_schema(), dialect="postgres")
    assert matcher.match(grammar, 'SELECT "Name" FROM "Artist"')
    assert not matcher.match(grammar, "SELECT Name FROM Artist")


def test_mysql_uses_backticks(matcher: GrammarMatcher) -> None:
    grammar = build_sql_grammar(shop_schema(), dialect="mysql")
    assert matcher.match(
        grammar, "SELECT od.`Unit Price` AS `Price`, YEAR(OrderDate) FROM `Order Details` AS od"
    )
    assert not matcher.match(grammar, 'SELECT "Unit Price" FROM "Order Details"')


def test_unknown_dialect_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown SQL dialect 'nosuchsql'"):
        build_sql_grammar(shop_schema(), dialect="nosuchsql")


# --------------------------------------------------------------------------------------------------
# Text and cache (no llama.cpp needed)


def test_names_that_need_quotes_have_only_the_quoted_form(sqlite_grammar: str) -> None:
    assert 'table-0 ::= "\\"Artist\\"" | "Artist"\n' in sqlite_grammar
    assert 'table-2 ::= "\\"Order Details\\""\n' in sqlite_grammar
    assert '"\\"order\\""\n' in sqlite_grammar and '| "order"' not in sqlite_grammar


def test_cache_is_keyed_by_names_and_dialect() -> None:
    schema = shop_schema()
    described = schema.model_copy(deep=True)
    described.tables[0].comment = "People who record albums"
    described.tables[0].columns[1].samples = ["AC/DC"]
    first = cached_sql_grammar(schema, "sqlite")
    assert cached_sql_grammar(described, "sqlite") is first  # comments and samples do not matter
    assert first == build_sql_grammar(schema, dialect="sqlite")
    assert cached_sql_grammar(schema, "postgres") != first
    assert cached_sql_grammar(schema.subset(["Artist"]), "sqlite") != first
