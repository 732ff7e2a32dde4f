"""SPACE-T's structured query, as SQL in any dialect and read back from it.

SPACE-T answers with indices into one table's columns: `sel` (selected columns) with `agg` (an aggregation
each), `conds` ([column, operator, value]: comparisons, or ASC/DESC for ordering) joined by `cond_conn_op`, and
`from` (the table). The index one past the last column is its "empty column" (空列): no column.

Its own SQL text compares with `==` and double-quoted values, which most databases read as identifiers, so the
answer's SQL is rendered here with sqlglot instead, quoted for the database it runs on. A follow-up question
needs the previous query in structured form; clients send back SQL, so it is read back into one.
"""

from __future__ import annotations

import re
from typing import Any

import sqlglot
from pydantic import Field, model_validator
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError

from text2sql.strict import StrictModel
from text2sql.table_qa.tables import QaColumn, QaTable, QaTables

# SPACE-T's operator lists (modelscope's space_T_cn `Constant`), by index.
AGGREGATIONS = ("", "AVG", "MAX", "MIN", "COUNT", "SUM", "COMPARE", "GROUP BY", "SAME", "M2M", "Y2Y", "TREND")
CONDITION_OPS = (">", "<", "==", "!=", "ASC", "DESC")
CONNECTORS = ("", "AND", "OR")
AVG, MAX, MIN, COUNT, SUM, GROUP_BY = 1, 2, 3, 4, 5, 7
ASC, DESC = 4, 5
# How SPACE-T reads a row limit out of an ordering's value ("最" is "the most": one row).
_LIMIT_WORDS = {"最": 1, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

_FUNCTIONS: dict[int, type[exp.Func]] = {AVG: exp.Avg, MAX: exp.Max, MIN: exp.Min, SUM: exp.Sum}
_FUNCTION_CODES = {cls: code for code, cls in _FUNCTIONS.items()}
_COMPARISONS: dict[int, type[exp.Binary]] = {0: exp.GT, 1: exp.LT, 2: exp.EQ, 3: exp.NEQ}
_COMPARISON_CODES = {cls: code for code, cls in _COMPARISONS.items()}
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class NotATableQuery(ValueError):
    """SQL that SPACE-T's structured form cannot hold (joins, subqueries, OR mixed with AND...)."""


class StructuredQuery(StrictModel):
    table: str = Field(description="The one table queried (SPACE-T's `from`).")
    sel: list[int] = Field(description="Selected column indices; the table's column count is the empty column.")
    agg: list[int] = Field(description="The aggregation of each selected column, an index into AGGREGATIONS.")
    conds: list[tuple[int, int, str]] = Field(description="[column, operator index, value] each.")
    cond_conn_op: int = Field(default=0, ge=0, lt=len(CONNECTORS), description="How conditions join: AND or OR.")

    @model_validator(mode="after")
    def _an_aggregation_per_column(self) -> StructuredQuery:
        if len(self.sel) != len(self.agg):
            raise ValueError(f"sel has {len(self.sel)} columns but agg {len(self.agg)} aggregations")
        return self

    @classmethod
    def from_spacet(cls, sql: dict[str, Any]) -> StructuredQuery:
        """From SPACE-T's dict, paired as its own SQL text pairs them: its post-processing may drop a selected
        empty column without its aggregation, and some multi-turn merges leave a fourth element on a condition."""
        sel = [int(s) for s in sql["sel"]]
        agg = [int(a) for a in sql["agg"]][: len(sel)]
        return cls(
            table=str(sql["from"][0]),
            sel=sel,
            agg=agg + [0] * (len(sel) - len(agg)),
            conds=[(int(c[0]), int(c[1]), str(c[2])) for c in sql.get("conds") or []],
            cond_conn_op=int(sql.get("cond_conn_op") or 0),
        )

    def to_spacet(self) -> dict[str, Any]:
        """The dict SPACE-T takes as `history_sql` (it changes it in place: a fresh one each call)."""
        return {
            "sel": list(self.sel),
            "agg": list(self.agg),
            "conds": [list(c) for c in self.conds],
            "cond_conn_op": self.cond_conn_op,
            "from": [self.table],
        }


def render_sql(query: StructuredQuery, table: QaTable, dialect: str) -> str:
    """The query as one SELECT in `dialect`. Aggregations SQL has no function for (COMPARE, SAME, M2M, Y2Y,
    TREND) select the plain column; GROUP BY selects the column and groups by it."""
    empty = len(table.columns)
    selects: list[exp.Expression] = []
    group_by: list[exp.Expression] = []
    for index, agg in zip(query.sel, query.agg, strict=True):
        if not 0 <= index < empty:
            if agg == COUNT:
                selects.append(exp.Count(this=exp.Star()))
            continue  # the empty column selects nothing of its own
        column = _column(table.columns[index])
        if agg in _FUNCTIONS:
            selects.append(_FUNCTIONS[agg](this=column))
        elif agg == COUNT:
            selects.append(exp.Count(this=exp.Distinct(expressions=[column])))
        else:
            selects.append(column)
            if agg == GROUP_BY:
                group_by.append(column.copy())
    select = exp.select(*(selects or [exp.Star()])).from_(_table(table.name))
    comparisons: list[exp.Expression] = []
    orderings: list[exp.Expression] = []
    limit: int | None = None
    for index, op, value in query.conds:
        if not 0 <= index < empty or not 0 <= op < len(CONDITION_OPS):
            continue
        column = _column(table.columns[index])
        if op in (ASC, DESC):
            orderings.append(_ordered(column, descending=op == DESC, dialect=dialect))
            if len(orderings) == 1:  # SPACE-T reads the limit off its first ordering
                limit = _limit(value)
        else:
            comparisons.append(_COMPARISONS[op](this=column, expression=_literal(value, table.columns[index])))
    if comparisons:
        join = exp.or_ if query.cond_conn_op == 2 else exp.and_
        select = select.where(join(*comparisons) if len(comparisons) > 1 else comparisons[0])
    if group_by:
        select = select.group_by(*group_by)
    if orderings:
        select = select.order_by(*orderings)
        if limit is not None:
            select = select.limit(limit)
    return select.sql(dialect=dialect)


def query_from_sql(sql: str, tables: QaTables, dialect: str) -> StructuredQuery:
    """Read a single-table SELECT back into SPACE-T's form; NotATableQuery says what it cannot hold."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except SqlglotError as e:
        raise NotATableQuery(f"the SQL does not parse: {str(e).splitlines()[0]}") from e
    if not isinstance(tree, exp.Select):
        raise NotATableQuery("it is not a single SELECT")
    for part in ("joins", "having", "with", "distinct", "laterals", "qualify", "windows"):
        if tree.args.get(part):
            raise NotATableQuery(f"it has {part.upper().rstrip('S')}, which SPACE-T's single-table form cannot hold")
    table = _the_table(tree, tables)
    empty = len(table.columns)

    def index_of(node: exp.Expression) -> int:
        if not isinstance(node, exp.Column) or node.table and node.table.lower() != table.name.split(".")[-1].lower():
            raise NotATableQuery(f"{node.sql(dialect=dialect)} is not a column of {table.name}")
        names = [c.name.lower() for c in table.columns]
        if node.name.lower() not in names:
            raise NotATableQuery(f"{node.name!r} is not a column of {table.name}")
        return names.index(node.name.lower())

    group = tree.args.get("group")
    grouped = {index_of(g) for g in group.expressions} if group else set()
    sel: list[int] = []
    agg: list[int] = []
    for item in tree.expressions:
        index, code = _selected(item.unalias(), index_of, empty)
        sel.append(index)
        agg.append(GROUP_BY if code == 0 and index in grouped else code)
    conds: list[tuple[int, int, str]] = []
    connector = 0
    where = tree.args.get("where")
    if where is not None:
        comparisons, connector = _comparisons(where.this)
        for comparison in comparisons:
            literal = comparison.expression
            if not isinstance(literal, exp.Literal | exp.Neg):
                raise NotATableQuery(f"{comparison.sql(dialect=dialect)} does not compare a column with a value")
            value = literal.this.this if isinstance(literal, exp.Neg) else literal.this
            prefix = "-" if isinstance(literal, exp.Neg) else ""
            conds.append((index_of(comparison.this), _COMPARISON_CODES[type(comparison)], f"{prefix}{value}"))
    order = tree.args.get("order")
    limit = tree.args.get("limit")
    limit_text = limit.expression.sql() if limit is not None and limit.expression is not None else ""
    for position, ordered in enumerate(order.expressions if order else []):
        code = DESC if ordered.args.get("desc") else ASC
        conds.append((index_of(ordered.this), code, limit_text if position == 0 else ""))
    return StructuredQuery(table=table.name, sel=sel, agg=agg, conds=conds, cond_conn_op=connector)


def _column(column: QaColumn) -> exp.Column:
    return exp.column(column.name, quoted=True)


def _table(name: str) -> exp.Table:
    schema, _, table = name.rpartition(".")
    return exp.table_(table, db=schema or None, quoted=True)


def _ordered(column: exp.Column, *, descending: bool, dialect: str) -> exp.Ordered:
    # NULLs where the database puts them anyway: otherwise sqlglot spells out an ordering SPACE-T never asked for.
    ordering = Dialect.get_or_raise(dialect).NULL_ORDERING
    nulls_first = ordering == ("nulls_are_large" if descending else "nulls_are_small")
    return exp.Ordered(this=column, desc=descending, nulls_first=nulls_first)


def _literal(value: str, column: QaColumn) -> exp.Expression:
    text = value.strip()
    if column.kind == "number" and _NUMBER.match(text):
        return exp.Literal.number(text) if not text.startswith("-") else exp.Neg(this=exp.Literal.number(text[1:]))
    return exp.Literal.string(value)


def _limit(value: str) -> int | None:
    text = value.strip()
    if text.isdigit():
        return int(text) or None
    for word, count in _LIMIT_WORDS.items():
        if word in text:
            return count
    digit = re.search(r"[1-9]", text)
    return int(digit.group()) if digit else None


def _the_table(tree: exp.Select, tables: QaTables) -> QaTable:
    source = tree.args.get("from_") or tree.args.get("from")  # sqlglot renamed the key in 30
    node = source.this if source is not None else None
    if not isinstance(node, exp.Table) or not node.name:
        raise NotATableQuery("it does not select from one table")
    name = f"{node.db}.{node.name}" if node.db else node.name
    table = tables.table(name) or tables.table(node.name)
    if table is None:
        raise NotATableQuery(f"table {name!r} is not one of the database's tables")
    return table


def _selected(item: exp.Expression, index_of, empty: int) -> tuple[int, int]:
    if isinstance(item, exp.Star):
        return empty, 0
    if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
        return empty, 0
    if isinstance(item, exp.Count):
        inner = item.this
        if isinstance(inner, exp.Star):
            return empty, COUNT
        if isinstance(inner, exp.Distinct) and len(inner.expressions) == 1:
            return index_of(inner.expressions[0]), COUNT
        return index_of(inner), COUNT
    if type(item) in _FUNCTION_CODES:
        return index_of(item.this), _FUNCTION_CODES[type(item)]
    return index_of(item), 0


def _comparisons(node: exp.Expression) -> tuple[list[exp.Binary], int]:
    """The WHERE clause's comparisons and their connector: all AND or all OR, as SPACE-T has one connector."""
    node = _unparenthesised(node)
    kind = type(node) if isinstance(node, exp.And | exp.Or) else None
    leaves: list[exp.Expression] = []

    def collect(part: exp.Expression) -> None:
        part = _unparenthesised(part)
        if isinstance(part, exp.And | exp.Or):
            if type(part) is not kind:
                raise NotATableQuery("it mixes AND and OR, and SPACE-T joins all conditions one way")
            collect(part.this)
            collect(part.expression)
        else:
            leaves.append(part)

    collect(node)
    for leaf in leaves:
        if type(leaf) not in _COMPARISON_CODES:
            raise NotATableQuery(f"the condition {leaf.sql()} is not a comparison SPACE-T makes (>, <, =, !=)")
    connector = {exp.And: 1, exp.Or: 2}.get(kind, 0)  # type: ignore[arg-type]
    return leaves, connector  # type: ignore[return-value]


def _unparenthesised(node: exp.Expression) -> exp.Expression:
    while isinstance(node, exp.Paren):
        node = node.this
    return node
