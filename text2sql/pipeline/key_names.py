"""A key where the question asked for a thing: "Which playlists are empty?" answered with
`SELECT PlaylistId FROM Playlist WHERE ...`, "Which track takes up the most disk space?" with `SELECT TrackId ...`.
Small models answer with the row's key out of habit; the person asking wanted the playlist, that is its name. When
the answer's own columns (the outermost level) show an id bare, a table's single-column primary key or a foreign
key to one, the question asks for no id, code or number, and the key's table has exactly one name column (`Name`,
`Title`, `playlist_name`...), the key is shown by that column; a foreign key's table is joined for it with a LEFT
JOIN on the key, so the rows stay the same. No model call; anything unclear is left as it is.
"""

from __future__ import annotations

import re

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from text2sql.pipeline.scopes import (
    answer_level,
    identifier,
    ordered_by,
    own_columns,
    owning_alias,
    rewritten,
    select_aliases,
    spelled_alias,
)
from text2sql.schema import DatabaseSchema, Table
from text2sql.schema.select import name_parts, words

# Words that ask for the key itself ("number" unless it counts: "the number of albums").
_KEY_WORDS = {"id", "ids", "identifier", "key", "code", "uuid", "sku"}
_KEY_PHRASES = re.compile(r"\bnumbers?\b(?!\s+of\b)|编号|序号|代码|号码|标识|号", re.IGNORECASE)
_NAME_PARTS = {"name", "title"}
_TEXT_TYPES = re.compile(r"char|text|clob|string|varchar", re.IGNORECASE)


def name_unasked_keys(
    sql: str, *, dialect: str, schema: DatabaseSchema, question: str | None
) -> tuple[str, list[str]] | None:
    """`sql` with each bare id column of its answer (a table's own key, or a foreign key to one) shown by its
    table's name column, and a note per key; None when none (or no question, or a question that asks for ids)."""
    if not question or _asks_for_keys(question):
        return None
    return rewritten(sql, dialect, lambda tree: _name_keys(tree, schema))


def _asks_for_keys(question: str) -> bool:
    return bool(_KEY_WORDS.intersection(words(question))) or _KEY_PHRASES.search(question) is not None


def _name_keys(tree: exp.Expression, schema: DatabaseSchema) -> list[str]:
    level = answer_level(tree, schema)
    if level is None:
        return []
    scope, tables = level
    notes = []
    for projection in list(tree.selects):
        if not isinstance(projection, exp.Column) or isinstance(projection.this, exp.Star):
            continue
        alias = owning_alias(projection, tables)
        table = tables[alias] if alias is not None else None
        if table is None or _last_part(projection.name) != "id":
            continue  # a key that is itself a name, a code or a number is what the question reads
        if tree.args.get("distinct") and ordered_by(tree, projection):
            continue  # PostgreSQL orders DISTINCT rows only by what they show
        if [name.lower() for name in table.primary_key] == [projection.name.lower()]:
            notes += _show_own_name(tree, projection, table)
        else:
            notes += _show_referenced_name(scope, projection, table, schema, tables)
    return notes


def _show_own_name(tree: exp.Select, key: exp.Column, table: Table) -> list[str]:
    """`SELECT PlaylistId FROM Playlist` as `SELECT Name FROM Playlist`: the same rows."""
    label = _name_column(table)
    if label is None or any(_is_column(other, label, key.table) for other in tree.selects):
        return []
    key.replace(exp.column(identifier(label), table=exp.to_identifier(key.table) if key.table else None))
    return [f"showed {table.name}.{key.name} by {label}: the question asks for the {table.name}, not its id"]


def _show_referenced_name(
    scope: Scope, key: exp.Column, table: Table, schema: DatabaseSchema, tables: dict[str, Table]
) -> list[str]:
    """`SELECT GenreId, COUNT(*) FROM Track GROUP BY GenreId` as `SELECT Genre.Name, COUNT(*) FROM Track LEFT JOIN
    Genre ON Track.GenreId = Genre.GenreId GROUP BY GenreId, Genre.Name`: a LEFT JOIN on the referenced key keeps
    the same rows (a NULL key shows a NULL name), and the name joins the grouping so that every database takes it."""
    reference = next(
        (fk for fk in table.foreign_keys if [c.lower() for c in fk.columns] == [key.name.lower()]), None
    )
    referenced = schema.table(reference.ref_table) if reference is not None else None
    if referenced is None or [c.lower() for c in referenced.primary_key] != [c.lower() for c in reference.ref_columns]:
        return []
    if any(known.name.lower() == referenced.name.lower() for known in tables.values()):
        return []  # already joined: which of its rows the key means is the query's own business
    label = _name_column(referenced)
    if label is None or not _qualified(scope, tables):
        return []  # the joined table's columns would make an unqualified name ambiguous
    tree: exp.Select = scope.expression
    alias = _free_alias(referenced.name, tables)
    condition = exp.EQ(
        this=exp.column(identifier(key.name), table=exp.to_identifier(key.table)),
        expression=exp.column(identifier(referenced.primary_key[0]), table=exp.to_identifier(alias)),
    )
    source = exp.Table(this=identifier(referenced.name))
    if alias != referenced.name:
        source.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    tree.append("joins", exp.Join(this=source, on=condition, side="LEFT"))
    named = exp.column(identifier(label), table=exp.to_identifier(alias))
    group = tree.args.get("group")
    if group is not None and any(_same_column(grouped, key) for grouped in group.expressions):
        group.append("expressions", named.copy())
    key.replace(named)
    tables[alias.lower()] = referenced
    return [f"showed {table.name}.{key.name} by {referenced.name}.{label}: the question asks for the "
            f"{referenced.name}, not its id"]


def _name_column(table: Table) -> str | None:
    """The table's one text column whose name ends in Name or Title; None when it has none or several."""
    named = [
        column.name for column in table.columns
        if not column.primary_key and _TEXT_TYPES.search(column.type or "") and _last_part(column.name) in _NAME_PARTS
    ]
    return named[0] if len(named) == 1 else None


def _last_part(name: str) -> str:
    parts = name_parts(name)
    return parts[-1] if parts else ""


def _qualified(scope: Scope, tables: dict[str, Table]) -> bool:
    """Qualify the level's unqualified columns with their table's alias; False (nothing changed) when one has no
    single owner."""
    aliases = select_aliases(scope)
    owners = {}
    for column in own_columns(scope):
        if column.table or column.name.lower() in aliases:
            continue
        alias = owning_alias(column, tables)
        if alias is None:
            return False
        owners[id(column)] = (column, spelled_alias(scope, alias))
    for column, alias in owners.values():
        column.set("table", exp.to_identifier(alias))
    return True


def _free_alias(name: str, tables: dict[str, Table]) -> str:
    """The table's own name, or with a number added when the query already uses it as an alias."""
    candidates = (name if n == 0 else f"{name}{n}" for n in range(len(tables) + 2))
    return next(candidate for candidate in candidates if candidate.lower() not in tables)



def _same_column(expression: exp.Expression, column: exp.Column) -> bool:
    return (
        isinstance(expression, exp.Column)
        and expression.name.lower() == column.name.lower()
        and expression.table.lower() == column.table.lower()
    )


def _is_column(projection: exp.Expression, name: str, qualifier: str) -> bool:
    return (
        isinstance(projection, exp.Column)
        and projection.name.lower() == name.lower()
        and projection.table.lower() in ("", qualifier.lower())
    )
