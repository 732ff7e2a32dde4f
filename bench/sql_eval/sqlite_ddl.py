"""PostgreSQL DDL rewritten for SQLite: CREATE TABLE (no schema, SERIAL as INTEGER, DEFAULTs folded) and
CREATE INDEX."""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from bench.sql_eval.pg_constants import evaluate_constant
from bench.sql_eval.pg_values import SERIAL_TYPES, to_sqlite_value


def quote_identifier(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def without_schemas(node: exp.Expression) -> exp.Expression:
    for table in node.find_all(exp.Table):
        table.set("db", None)
        table.set("catalog", None)
    return node


def sqlite_create_table(create: exp.Create) -> str:
    """The CREATE TABLE for SQLite: no schema, SERIAL as INTEGER, DEFAULT casts folded into literals."""
    create = without_schemas(create.copy())
    for column in create.this.expressions:
        if not isinstance(column, exp.ColumnDef):
            continue
        kind = column.args.get("kind")
        if isinstance(kind, exp.DataType) and kind.this in SERIAL_TYPES:
            # With PRIMARY KEY this is INTEGER PRIMARY KEY, SQLite's auto-assigned rowid.
            column.set("kind", exp.DataType.build("INTEGER"))
        for constraint in column.args.get("constraints") or []:
            default = constraint.args.get("kind")
            if isinstance(default, exp.DefaultColumnConstraint):
                default.set("this", _sqlite_default(default.this, column.args.get("kind")))
    return create.sql(dialect="sqlite")


def _sqlite_default(value: exp.Expression, kind: exp.DataType | None) -> exp.Expression:
    if isinstance(value, (exp.Literal, exp.Null, exp.Boolean, exp.CurrentTimestamp, exp.CurrentDate)):
        return value
    if value.find(exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime, exp.Localtimestamp):
        raise ValueError(f"cannot write the time-dependent DEFAULT {value.sql('postgres')} for SQLite")
    folded = to_sqlite_value(
        evaluate_constant(value, dt.datetime.now(dt.timezone.utc)), kind, column="DEFAULT"
    )
    if folded is None:
        return exp.Null()
    if isinstance(folded, (int, float)):
        return exp.Literal.number(folded)
    return exp.Literal.string(str(folded))


def sqlite_create_index(create: exp.Create) -> str:
    index = create.this
    table = index.args.get("table")
    params = index.args.get("params")
    columns = []
    for column in (params.args.get("columns") if params else None) or []:
        ordered = column if isinstance(column, exp.Ordered) else exp.Ordered(this=column)
        columns.append(ordered.this.sql(dialect="sqlite") + (" DESC" if ordered.args.get("desc") else ""))
    if not table or not columns:
        raise ValueError(f"cannot write this index for SQLite: {create.sql('postgres')}")
    unique = "UNIQUE " if create.args.get("unique") else ""
    return f"CREATE {unique}INDEX {quote_identifier(index.name)} ON {quote_identifier(table.name)} ({', '.join(columns)})"
