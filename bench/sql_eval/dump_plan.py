"""A dump planned for SQLite (`plan_dump`): its tables, its rows and other data statements in dump order, and
its indexes. Every value is what PostgreSQL would store (`bench.sql_eval.pg_constants`); any statement that is not
housekeeping and not understood is an error, never silently dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres

from bench.sql_eval.dump_text import (
    HOUSEKEEPING,
    CopyBlock,
    copy_field,
    split_dump,
    split_statements,
    strip_comments,
)
from bench.sql_eval.pg_constants import evaluate_constant
from bench.sql_eval.pg_values import to_sqlite_value
from bench.sql_eval.sqlite_ddl import sqlite_create_index, without_schemas


@dataclass
class DumpTable:
    name: str  # without schema, as written
    create: exp.Create  # the PostgreSQL statement
    columns: list[str]
    types: dict[str, exp.DataType]  # by lowercased column name
    rows: int = 0


@dataclass
class DumpPlan:
    tables: dict[str, DumpTable] = field(default_factory=dict)  # by lowercased name, in creation order
    # ("rows", (table, columns, rows)) or ("sql", SQLite statement), in dump order
    steps: list[tuple[str, Any]] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    deletes: bool = False


def _key(table: exp.Table | str) -> str:
    return (table if isinstance(table, str) else table.name).split(".")[-1].lower()


def plan_dump(dump: Path, now: dt.datetime) -> DumpPlan:
    """Parse the dump into CREATE TABLEs, row batches and other data statements, and indexes."""
    plan = DumpPlan()
    constraints: list[tuple[str, exp.Expression]] = []
    for part in split_dump(dump.read_text(encoding="utf-8")):
        if isinstance(part, CopyBlock):
            table = _table(plan, part.table, dump)
            columns = part.columns or table.columns
            rows = [_copy_row(line, table, columns, dump) for line in part.lines]
            table.rows += len(rows)
            plan.steps.append(("rows", (table, columns, rows)))
            continue
        for statement in split_statements(part):
            bare = strip_comments(statement).strip()
            if HOUSEKEEPING.match(bare):
                plan.skipped[" ".join(re.findall(r"[A-Za-z_][\w.]*", bare)[:2])] += 1
                continue
            _plan_statement(plan, statement, constraints, dump, now)
    for table_name, constraint in constraints:
        schema = _table(plan, table_name, dump).create.this
        schema.append("expressions", constraint)
    return plan


class _DumpPostgres(Postgres):
    """PostgreSQL, except that TO_CHAR stays an anonymous function with its template as written.

    sqlglot translates TO_CHAR templates into strftime codes, and that loses text: broker's
    ``TO_CHAR(..., '%Y%m%d %H:%i:%s')`` would come back as ``'YYYYMM%D HH24:%i:%s'``.
    """

    class Parser(Postgres.Parser):
        FUNCTIONS = {name: f for name, f in Postgres.Parser.FUNCTIONS.items() if name != "TO_CHAR"}


def _plan_statement(
    plan: DumpPlan,
    statement: str,
    constraints: list[tuple[str, exp.Expression]],
    dump: Path,
    now: dt.datetime,
) -> None:
    parsed = sqlglot.parse_one(statement, read=_DumpPostgres)
    if isinstance(parsed, exp.Create) and parsed.kind == "TABLE" and isinstance(parsed.this, exp.Schema):
        name = parsed.this.this.name
        columns = [c for c in parsed.this.expressions if isinstance(c, exp.ColumnDef)]
        plan.tables[_key(name)] = DumpTable(
            name=name,
            create=parsed,
            columns=[c.name for c in columns],
            types={c.name.lower(): c.args.get("kind") or exp.DataType.build("text") for c in columns},
        )
    elif isinstance(parsed, exp.Create) and parsed.kind == "INDEX":
        plan.indexes.append(sqlite_create_index(parsed))
    elif isinstance(parsed, exp.Alter) and all(isinstance(a, exp.AddConstraint) for a in parsed.actions):
        for action in parsed.actions:
            for constraint in action.expressions:
                constraints.append((parsed.this.name, without_schemas(constraint.copy())))
    elif isinstance(parsed, exp.Insert) and isinstance(parsed.expression, exp.Values):
        target = parsed.this.this if isinstance(parsed.this, exp.Schema) else parsed.this
        table = _table(plan, target.name, dump)
        columns = (
            [c.name for c in parsed.this.expressions]
            if isinstance(parsed.this, exp.Schema)
            else table.columns
        )
        if parsed.args.get("conflict") or parsed.args.get("returning"):
            raise ValueError(
                f"{dump.name}: INSERT ... ON CONFLICT/RETURNING is not supported: {statement[:120]}"
            )
        rows = []
        for values in parsed.expression.expressions:
            items = values.expressions if isinstance(values, exp.Tuple) else [values]
            if len(items) != len(columns):
                raise ValueError(
                    f"{dump.name}: {len(items)} values for {len(columns)} columns of {table.name}"
                )
            rows.append(
                tuple(
                    to_sqlite_value(
                        evaluate_constant(item, now), table.types[c.lower()], column=f"{table.name}.{c}"
                    )
                    for item, c in zip(items, columns, strict=True)
                )
            )
        table.rows += len(rows)
        plan.steps.append(("rows", (table, columns, rows)))
    elif isinstance(parsed, (exp.Insert, exp.Update, exp.Delete)):
        plan.deletes |= isinstance(parsed, exp.Delete)
        plan.steps.append(("sql", without_schemas(parsed).sql(dialect="sqlite")))
    else:
        raise ValueError(f"{dump.name}: unsupported statement (not loaded into SQLite): {statement[:160]}")


def _table(plan: DumpPlan, name: str, dump: Path) -> DumpTable:
    try:
        return plan.tables[_key(name)]
    except KeyError:
        raise ValueError(f"{dump.name}: rows for {name}, which no CREATE TABLE before them defines") from None


def _copy_row(line: str, table: DumpTable, columns: list[str], dump: Path) -> tuple[Any, ...]:
    fields = line.split("\t")
    if len(fields) != len(columns):
        raise ValueError(
            f"{dump.name}: COPY row for {table.name} has {len(fields)} fields, expected {len(columns)}"
        )
    return tuple(
        to_sqlite_value(copy_field(f), table.types[c.lower()], column=f"{table.name}.{c}")
        for f, c in zip(fields, columns, strict=True)
    )
