"""A family name the question did not ask for: "List pairs of the owner's first name and the dog's name" (列出主人的
名字和狗的名字对) answered with `SELECT T1.first_name, T1.last_name, T2.name ...`. Small models show a person's whole
name out of habit, and do so most in Chinese, where 名 (given name) and 姓 (family name) are separate words and a
translated "first name" reads as plain 名字. When the question asks for a given name ("first name", 名) and no
family name ("last name", "surname", "full name", 姓, 全名), the answer's own columns (the outermost level, not a set
operation) keep a person's given-name column and lose the same table's family-name column beside it. Spider
train's gold queries agree every time: 85 questions ask for a first name and no other, and none of their gold
queries shows the last name. No model call; anything unclear is left as it is.
"""

from __future__ import annotations

import re

from sqlglot import exp

from text2sql.pipeline.scopes import answer_level, ordered_by, owning_alias, rewritten
from text2sql.schema import DatabaseSchema

# 名 alone is the given name ("学生的名和性别"), but not in a rank or a list: 前五名, 第一名, 排名, 名次, 名单, 名称.
_ASKS_GIVEN = re.compile(
    r"\b(?:first|given)\s+names?\b|\bforenames?\b|名字|(?<![前第排报命署签提知著有\d一二三四五六七八九十百])名(?![称单次额])",
    re.IGNORECASE,
)
_ASKS_FAMILY = re.compile(
    r"\blast\b|\bsurnames?\b|\b(?:family|full|whole|complete)\s+names?\b|姓|全名|全称", re.IGNORECASE
)
# Column names with their underscores taken out and lower-cased (Staff_First_Name: stafffirstname).
_GIVEN_ENDINGS = ("firstname", "givenname", "forename")
_FAMILY_ENDINGS = ("lastname", "familyname", "surname")


def drop_unasked_family_names(
    sql: str, *, dialect: str, schema: DatabaseSchema, question: str | None
) -> tuple[str, list[str]] | None:
    """`sql` without the family-name columns its answer shows beside the same table's given name when the question
    asks for the given name only, and a note per column; None when none (or no such question)."""
    if not question or not _ASKS_GIVEN.search(question) or _ASKS_FAMILY.search(question):
        return None
    return rewritten(sql, dialect, lambda tree: _drop_family_names(tree, schema))


def _drop_family_names(tree: exp.Expression, schema: DatabaseSchema) -> list[str]:
    level = answer_level(tree, schema)
    if level is None:
        return []
    _, tables = level
    shown = [(projection, _shown_column(projection)) for projection in tree.selects]
    given_owners = {
        owning_alias(column, tables) for _, column in shown if column is not None and _is_given(column.name)
    } - {None}
    notes = []
    for projection, column in shown:
        if column is None or not _is_family(column.name) or owning_alias(column, tables) not in given_owners:
            continue
        if tree.args.get("distinct") and ordered_by(tree, column):
            continue  # PostgreSQL orders DISTINCT rows only by what they show
        projection.pop()
        notes.append(f"dropped {column.sql()}: the question asks for the first name, not the family name")
    return notes


def _shown_column(projection: exp.Expression) -> exp.Column | None:
    """The column a projection shows as it is (`T1.last_name`, `last_name AS surname`); None for anything computed."""
    inner = projection.this if isinstance(projection, exp.Alias) else projection
    if isinstance(inner, exp.Column) and not isinstance(inner.this, exp.Star):
        return inner
    return None


def _is_given(name: str) -> bool:
    return _names_as(name, _GIVEN_ENDINGS, "fname")


def _is_family(name: str) -> bool:
    return _names_as(name, _FAMILY_ENDINGS, "lname")


def _names_as(name: str, endings: tuple[str, ...], short: str) -> bool:
    """The column's name ends in one of `endings` (underscores aside), or is the short form alone or after an
    underscore (`Fname`, `stu_fname`)."""
    joined = name.replace("_", "").lower()
    return joined.endswith(endings) or joined == short or name.lower().endswith(f"_{short}")

