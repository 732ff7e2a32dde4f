"""SPACE-T training records: one JSON line each, checked line by line before any worker starts.

    {"question": "北京有哪些演唱会", "database": "music", "table": "concert",
     "sql": "SELECT concert_id FROM concert WHERE city = '北京'"}
    {"question": "北京的基金", "table": {"name": "fund", "columns": [{"name": "名称", "kind": "text"},
     {"name": "城市", "kind": "text"}], "rows": [["甲", "北京"]]},
     "query": {"sel": [0], "agg": [0], "cond_conn_op": 0, "conds": [[1, 2, "北京"]]}}
    {"question": "上海的呢", "database": "music", "table": "concert", "action": "change_cond",
     "history": [{"question": "北京有哪些演唱会", "sql": "SELECT ..."}], "query": {...}}

`table` names a table of the configured `database`, or is the table itself (columns with SPACE-T's kinds, and the
rows it links values in). The target is SQL (`sql`: a single-table SELECT, read into SPACE-T's form as serving
reads a history turn) or SPACE-T's structured query (`query`: indices into the table's columns, where one past
the last is its empty column; aggregations, operators and connectors by index, as in `text2sql/table_qa/query.py`).
A follow-up has `history` (as in `POST /v1/sql/generate`: the last turn's SQL becomes SPACE-T's `history_sql`)
and names its `action`, how SPACE-T merges this turn into the previous query; its target is then this turn's own
query. A first turn's action is `firstTurn`.

Checked here: the JSON and its fields, that the database and table exist, that every selected or compared column
is one of the table's, that every aggregation, operator and connector is one SPACE-T has, and the model's fixed
slots (4 selected columns, 6 conditions). examples.py checks what needs the model's tokenizer. A bad line is never
skipped: `DataError` (the LoRA job's) lists each one as `path:line: what is wrong`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from text2sql.dialects import DEFAULT_DIALECT
from text2sql.prompts import HistoryTurn
from text2sql.strict import StrictModel
from text2sql.table_qa import NotATableQuery, QaTable, QaTables, StructuredQuery, query_from_sql
from text2sql.table_qa.query import AGGREGATIONS, ASC, CONDITION_OPS
from training.jsonl import BadLine, read_checked_lines
from training.records import DialectId, NonBlankText
from training.spacet.tables import TableSource, TablesUnavailable, inline_tables

# modelscope's space_T_cn Constant: the multi-turn actions by index, and the head's fixed slots.
ACTIONS = (
    "add_cond", "change_cond", "del_cond", "change_focus_total", "change_agg_only", "del_focus", "restart",
    "switch_table", "out_of_scripts", "repeat", "firstTurn",
)
FIRST_TURN = "firstTurn"
MAX_SELECTED = 4
MAX_CONDITIONS = 6


class TargetQuery(StrictModel):
    """SPACE-T's structured query over the record's table (the table comes from `table`)."""

    sel: list[int] = Field(min_length=1, description="Selected column indices; the column count is the empty column.")
    agg: list[int] = Field(description="The aggregation of each selected column (0 none, 1 AVG, 2 MAX, 3 MIN, 4 COUNT, 5 SUM, ...).")
    cond_conn_op: int = Field(default=0, description="How conditions join: 0 none, 1 AND, 2 OR.")
    conds: list[tuple[int, int, str]] = Field(
        default_factory=list,
        description="[column, operator, value] each: 0 >, 1 <, 2 ==, 3 !=, 4 ASC, 5 DESC. A comparison's value is "
        "copied from the question; an ordering's is its row limit ('3', '最') or empty.",
    )


class SpaceTRecord(StrictModel):
    question: NonBlankText = Field(description="The question in plain language.")
    database: str | None = Field(default=None, description="A configured database; `table` names one of its tables.")
    table: str | QaTable = Field(description="The table the target queries: a name in `database`, or the table itself.")
    sql: str | None = Field(default=None, description="The target as a single-table SELECT; or give `query`.")
    query: TargetQuery | None = Field(default=None, description="The target as SPACE-T's structured query; or give `sql`.")
    history: list[HistoryTurn] = Field(
        default_factory=list, description="Earlier turns, oldest first; the last one's SQL is SPACE-T's history_sql."
    )
    action: Literal[ACTIONS] | None = Field(  # type: ignore[valid-type]
        default=None, description="How this turn changes the previous query; needed with history, else firstTurn."
    )
    dialect: DialectId | None = Field(
        default=None, description="Dialect of the SQL (sqlglot id); default: the database's, else sqlite."
    )

    @model_validator(mode="after")
    def _consistent(self) -> SpaceTRecord:
        if (self.sql is None) == (self.query is None):
            raise ValueError("give exactly one of 'sql' or 'query'")
        if isinstance(self.table, str) and self.database is None:
            raise ValueError(f"table {self.table!r} is a name: give its 'database', or give the table itself")
        if isinstance(self.table, QaTable) and self.database is not None:
            raise ValueError("give 'database' with a table name, not with an inline table")
        if self.history and self.action is None:
            raise ValueError(f"a follow-up (history) names its 'action', one of {', '.join(ACTIONS)}")
        return self


@dataclass(frozen=True)
class CheckedRecord:
    where: str  # path:line, for problems found later
    question: str
    tables: QaTables  # what the question is asked over (a database's tables, or the inline one)
    table: QaTable  # the one the target queries
    query: StructuredQuery
    previous: StructuredQuery | None  # SPACE-T's history_sql
    action: int


def load_spacet_records(path: str | Path, tables: TableSource) -> list[CheckedRecord]:
    """Every record of the JSONL file at `path`, each checked; `DataError` when any line is bad."""
    return read_checked_lines(path, SpaceTRecord, lambda record, where: _checked(record, tables, where=where))


def _checked(record: SpaceTRecord, source: TableSource, *, where: str) -> CheckedRecord:
    tables, table, dialect = _tables(record, source)
    if record.sql is not None:
        try:
            query = query_from_sql(record.sql, tables, dialect)
        except NotATableQuery as e:
            raise BadLine(f"sql: {e}") from None
        if query.table.lower() != table.name.lower():
            raise BadLine(f"sql selects from {query.table!r}, but the record's table is {table.name!r}")
        _check_query(query, table, label="sql")
    else:
        assert record.query is not None  # the model validator saw to it
        try:
            query = StructuredQuery(table=table.name, **record.query.model_dump())
        except ValidationError as e:
            raise BadLine("query: " + "; ".join(error["msg"] for error in e.errors(include_url=False))) from None
        _check_query(query, table, label="query")
    previous = None
    if record.history:
        last = len(record.history) - 1
        try:
            previous = query_from_sql(record.history[last].sql, tables, dialect)
        except NotATableQuery as e:
            raise BadLine(f"history[{last}].sql cannot be SPACE-T's history_sql: {e}") from None
    return CheckedRecord(
        where=where, question=record.question, tables=tables, table=table, query=query, previous=previous,
        action=ACTIONS.index(record.action or FIRST_TURN),
    )


def _tables(record: SpaceTRecord, source: TableSource) -> tuple[QaTables, QaTable, str]:
    if isinstance(record.table, QaTable):
        table = record.table
        width = len(table.columns)
        for index, row in enumerate(table.rows):
            if len(row) != width:
                raise BadLine(f"table.rows[{index}] has {len(row)} cells for {width} columns")
        return inline_tables(table), table, record.dialect or DEFAULT_DIALECT
    assert record.database is not None
    try:
        tables = source.database(record.database)
    except TablesUnavailable as e:
        raise BadLine(str(e)) from None
    table = tables.table(record.table)
    if table is None:
        names = ", ".join(t.name for t in tables.tables)
        raise BadLine(f"table {record.table!r} is not in database {record.database!r}; its tables: {names}")
    return tables, table, record.dialect or source.dialect(record.database)


def _check_query(query: StructuredQuery, table: QaTable, *, label: str) -> None:
    """Every index names something that exists, within the model's slots; all problems at once."""
    empty = len(table.columns)
    columns = f"table {table.name!r} has columns 0..{empty - 1}, and {empty} is SPACE-T's empty column"
    problems: list[str] = []
    if len(query.sel) > MAX_SELECTED:
        problems.append(f"{label} selects {len(query.sel)} columns; SPACE-T selects at most {MAX_SELECTED}")
    for i, (column, agg) in enumerate(zip(query.sel, query.agg, strict=True)):
        if not 0 <= column <= empty:
            problems.append(f"{label}.sel[{i}]: there is no column {column} ({columns})")
        if not 0 <= agg < len(AGGREGATIONS):
            problems.append(f"{label}.agg[{i}]: {agg} is not one of SPACE-T's aggregations (0..{len(AGGREGATIONS) - 1})")
    if len(query.conds) > MAX_CONDITIONS:
        problems.append(f"{label} has {len(query.conds)} conditions; SPACE-T has at most {MAX_CONDITIONS}")
    for i, (column, op, value) in enumerate(query.conds):
        if not 0 <= column <= empty:
            problems.append(f"{label}.conds[{i}]: there is no column {column} ({columns})")
        if not 0 <= op < len(CONDITION_OPS):
            ops = ", ".join(f"{n} {name}" for n, name in enumerate(CONDITION_OPS))
            problems.append(f"{label}.conds[{i}]: operator {op} is not one of SPACE-T's ({ops})")
        elif op < ASC and column < empty and not value.strip():
            problems.append(f"{label}.conds[{i}]: compares {table.columns[column].name!r} with an empty value")
    if problems:
        raise BadLine("; ".join(problems))
