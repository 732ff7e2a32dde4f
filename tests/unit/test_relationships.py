"""Join keys a database does not declare, given in its config: checked when the schema is read, shown to the model
as foreign keys, and followed by join completion. The database is a real SQLite file with no FOREIGN KEY."""

from __future__ import annotations

import sqlite3

import pytest
from pydantic import ValidationError

from deployments.databases import DatabaseConfig
from deployments.errors import DatabaseUnavailable
from deployments.schema_resolver import SchemaResolver
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.schema.render import render_ddl


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("relationships") / "library.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            """
            CREATE TABLE author (aid INTEGER, name TEXT);
            CREATE TABLE writes (aid INTEGER, pid INTEGER);
            CREATE TABLE publication (pid INTEGER, title TEXT, year INTEGER);
            INSERT INTO author VALUES (1, 'Ada'), (2, 'Bo');
            INSERT INTO writes VALUES (1, 10), (2, 11), (1, 12);
            INSERT INTO publication VALUES (10, 'On Engines', 1843), (11, 'Notes', 1900), (12, 'Tables', 1850);
            """
        )
    connection.close()
    return f"sqlite:///{path}"


def resolver(url: str, relationships: list[str], *, infer: bool = True) -> SchemaResolver:
    config = DatabaseConfig(url=url, relationships=relationships, infer_relationships=infer)
    return SchemaResolver({"library": config})


def test_declared_relationships_become_foreign_keys_the_model_sees(library) -> None:
    schema = resolver(library, ["writes.aid -> author.aid", "Writes.PID -> publication.pid"]).schema("library")
    writes = schema.table("writes")
    assert [(fk.columns, fk.ref_table, fk.ref_columns) for fk in writes.foreign_keys] == [
        (["aid"], "author", ["aid"]), (["pid"], "publication", ["pid"])
    ]
    assert "REFERENCES author(aid)" in render_ddl(schema)


def test_a_forgotten_join_is_completed_along_a_declared_relationship(library) -> None:
    schema = resolver(library, ["writes.aid -> author.aid"]).schema("library")
    outcome = check_candidate(
        "SELECT pid FROM writes WHERE name = 'Ada'",
        dialects=Dialects("sqlite", "sqlite", "sqlite"), schema=schema, validate=True,
    )
    assert outcome.ok, outcome.error
    assert outcome.answer_sql == (
        "SELECT pid FROM writes JOIN author ON writes.aid = author.aid WHERE author.name = 'Ada'"
    )
    # Without the relationship (and none read from the data) nothing tells which table `name` joins through: the
    # query goes back to the model.
    bare = check_candidate(
        "SELECT pid FROM writes WHERE name = 'Ada'",
        dialects=Dialects("sqlite", "sqlite", "sqlite"), schema=resolver(library, [], infer=False).schema("library"),
        validate=True,
    )
    assert not bare.ok and bare.code == "unknown_column"


@pytest.mark.parametrize("text", ["writes.aid = author.aid", "writes -> author", "writes.aid ->"])
def test_a_malformed_relationship_is_refused_with_the_config(library, text: str) -> None:
    with pytest.raises(ValidationError, match="table.column -> table.column"):
        DatabaseConfig(url=library, relationships=[text])


@pytest.mark.parametrize(
    ("text", "named"),
    [("writes.aid -> authors.aid", "no table 'authors'"), ("writes.author_id -> author.aid", "no column 'author_id'")],
)
def test_a_relationship_naming_what_does_not_exist_is_reported_by_name(library, text: str, named: str) -> None:
    with pytest.raises(DatabaseUnavailable, match=named):
        resolver(library, [text]).schema("library")


def test_a_key_the_database_declares_is_not_repeated(tmp_path) -> None:
    path = tmp_path / "declared.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript(
            "CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE b (id INTEGER, a_id INTEGER REFERENCES a(id));"
        )
    connection.close()
    schema = resolver(f"sqlite:///{path}", ["b.a_id -> a.id"]).schema("library")
    assert len(schema.table("b").foreign_keys) == 1
