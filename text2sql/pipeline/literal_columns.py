"""Literals checked against the data: `WHERE Region = 'Asia'` when no row's Region is 'Asia' but Continent is,
or `Language = 'english'` when the data spells it 'English'. Such a condition matches nothing, and the answer is
an empty list, a zero or a NULL that looks like a fact. Small models pick the wrong one of two similar columns,
or the question's spelling of a value.

For each comparison of a text column with string literals (`=`, `<>`, `IN`), asked of the database itself:
- the column holds every literal: nothing changes;
- it holds none of them, and exactly one other text column of the same table holds them all: the comparison
  moves to that column;
- otherwise a literal the column does not hold becomes the column's one value that differs from it only in
  case, when there is exactly one.
No model call; a probe that fails or a case in doubt leaves the query as it is.
"""

from __future__ import annotations

import re
from typing import Protocol

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from text2sql.pipeline.scopes import identifier, owning_alias, rewritten, tables_by_alias
from text2sql.schema import DatabaseSchema, Table
from text2sql.schema.values import is_text_type

# Numbers and dates written as strings are compared by value or format, not looked up as text.
_NOT_A_NAME = re.compile(r"[\d\s:./+-]*")


class ValueProbe(Protocol):
    def columns_holding(self, table: Table, columns: list[str], literal: str) -> set[str]: ...

    def spellings(self, table: Table, column: str, literal: str) -> list[str]: ...


def relink_literals(
    sql: str, *, dialect: str, schema: DatabaseSchema, probe: ValueProbe
) -> tuple[str, list[str]] | None:
    """`sql` with its literals moved to the column or spelling the data holds, and a note per change."""

    def relink(tree: exp.Expression) -> list[str]:
        notes: list[str] = []
        for scope in traverse_scope(tree):
            if isinstance(scope.expression, exp.Select):
                notes += _relink_in_level(scope, schema, probe)
        return notes

    return rewritten(sql, dialect, relink)


def _relink_in_level(scope: Scope, schema: DatabaseSchema, probe: ValueProbe) -> list[str]:
    tables = tables_by_alias(scope, schema)
    if not tables:
        return []
    notes = []
    for column, literals in _comparisons(scope.expression):
        owner = owning_alias(column, tables)
        if owner is None:
            continue
        table = tables[owner]
        compared = table.column(column.name)
        if compared is None or not is_text_type(compared.type):
            continue
        if all(probe.columns_holding(table, [compared.name], literal.this) for literal in literals):
            continue  # the usual case, settled by one lookup that stops at the first match
        text_columns = [c.name for c in table.columns if is_text_type(c.type)]
        holding = [probe.columns_holding(table, text_columns, literal.this) for literal in literals]
        elsewhere = set.intersection(*holding) if not any(compared.name in held for held in holding) else set()
        if len(elsewhere) == 1:
            (other,) = elsewhere
            column.set("this", identifier(other))
            notes.append(
                f"compared {table.name}.{other} instead of {table.name}.{compared.name}, which holds none of "
                + ", ".join(f"'{literal.this}'" for literal in literals)
            )
            continue
        for literal, held in zip(literals, holding, strict=True):
            if compared.name in held:
                continue
            spellings = probe.spellings(table, compared.name, literal.this)
            if len(spellings) == 1 and spellings[0] != literal.this:
                notes.append(f"spelled '{literal.this}' as the data does: '{spellings[0]}'")
                literal.set("this", spellings[0])
    return notes


def _comparisons(select: exp.Select) -> list[tuple[exp.Column, list[exp.Literal]]]:
    """This level's column-to-string-literal comparisons (`=`, `<>`, `IN (...)`), not those of its subqueries."""
    found = []
    for node in select.find_all(exp.EQ, exp.NEQ, exp.In):
        if node.find_ancestor(exp.Select) is not select:
            continue
        if isinstance(node, exp.In):
            column, literals = node.this, node.expressions
        else:
            column, literal = node.this, node.expression
            if isinstance(column, exp.Literal):
                column, literal = literal, column
            literals = [literal]
        if not isinstance(column, exp.Column) or not literals:
            continue
        if all(_is_name_literal(literal) for literal in literals):
            found.append((column, literals))
    return found


def _is_name_literal(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string and not _NOT_A_NAME.fullmatch(node.this)


