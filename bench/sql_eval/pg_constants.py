"""A dump's constant expressions, evaluated as PostgreSQL would (`evaluate_constant`).

Relative dates. Four dumps (advising, broker, car_dealership, derm_treatment) insert values such as
``CURRENT_DATE - INTERVAL '5 days'`` or ``DATE_TRUNC('month', CURRENT_DATE)``, and their questions ask about
"the last 7 days". sqlglot cannot write these for SQLite (it emits ``INTERVAL '5' DAYS``, which SQLite
rejects), so the builder evaluates such constant expressions itself with PostgreSQL's rules (month
arithmetic clamps to the month's end, ``DATE_TRUNC('week')`` is Monday, ``EXTRACT`` gives numerics,
``TO_CHAR`` templates, assignment casts to the column's type) in UTC, and stores dates as ``YYYY-MM-DD`` and
timestamps as ``YYYY-MM-DD HH:MM:SS[.ffffff]``, PostgreSQL's text forms. Because that data is relative to
the day it is loaded, a database or file of such a dump is rebuilt when it was built on an earlier (UTC)
day (`bench.sql_eval.fingerprint`); the other dumps are built once.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from sqlglot import exp

from bench.sql_eval.pg_functions import date_trunc, extract, to_char
from bench.sql_eval.pg_values import Interval, add_interval, cast, parse_interval, pg_text, type_family


def evaluate_constant(node: exp.Expression, now: dt.datetime) -> Any:
    """A constant expression's value: literals, casts, CURRENT_DATE/CURRENT_TIMESTAMP/NOW(), interval
    arithmetic, DATE_TRUNC, EXTRACT, TO_CHAR, || and + - * /. Anything else raises ValueError."""
    if isinstance(node, exp.Paren):
        return evaluate_constant(node.this, now)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = str(node.this)
        return int(text) if re.fullmatch(r"\d+", text) else Decimal(text)
    if isinstance(node, (exp.ByteString, exp.RawString, exp.National)):
        return node.this
    if isinstance(node, exp.Neg):
        value = evaluate_constant(node.this, now)
        return -value
    if isinstance(node, exp.CurrentDate):
        return now.date()
    if isinstance(node, exp.CurrentTimestamp):
        return now
    if isinstance(node, exp.Localtimestamp):
        return now.replace(tzinfo=None)
    if isinstance(node, exp.Interval):
        text = str(evaluate_constant(node.this, now))
        unit = node.args.get("unit")
        return parse_interval(f"{text} {unit.name}" if unit is not None else text)
    if isinstance(node, exp.Cast):
        return cast(evaluate_constant(node.this, now), type_family(node.to))
    if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
        unit = node.args.get("unit")
        return date_trunc(unit.name if unit is not None else "", evaluate_constant(node.this, now))
    if isinstance(node, exp.Extract):
        return extract(node.this.name, evaluate_constant(node.expression, now))
    if isinstance(node, exp.Anonymous) and node.name.upper() == "TO_CHAR" and len(node.expressions) == 2:
        value, template = (evaluate_constant(e, now) for e in node.expressions)
        return None if value is None or template is None else to_char(value, str(template))
    if isinstance(node, exp.DPipe):
        left, right = evaluate_constant(node.this, now), evaluate_constant(node.expression, now)
        return None if left is None or right is None else pg_text(left) + pg_text(right)
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div)):
        return _arithmetic(node, evaluate_constant(node.this, now), evaluate_constant(node.expression, now))
    raise ValueError(f"unsupported constant expression {node.sql(dialect='postgres')!r}")


def _arithmetic(node: exp.Expression, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    subtract = isinstance(node, exp.Sub)
    temporal = (dt.date, dt.datetime)
    if isinstance(node, (exp.Add, exp.Sub)):
        if isinstance(left, temporal) and isinstance(right, Interval):
            return add_interval(left, -right if subtract else right)
        if isinstance(left, Interval) and isinstance(right, temporal) and not subtract:
            return add_interval(right, left)
        if isinstance(left, Interval) and isinstance(right, Interval):
            return left + (-right if subtract else right)
        if isinstance(left, dt.date) and not isinstance(left, dt.datetime) and isinstance(right, int):
            return left + dt.timedelta(days=-right if subtract else right)
        if subtract and type(left) is dt.date and type(right) is dt.date:
            return (left - right).days
        if subtract and isinstance(left, dt.datetime) and isinstance(right, dt.datetime):
            delta = left - right
            return Interval(days=delta.days, micros=delta.seconds * 1_000_000 + delta.microseconds)
    if isinstance(left, (int, Decimal)) and isinstance(right, (int, Decimal)):
        if isinstance(node, exp.Add):
            return left + right
        if subtract:
            return left - right
        if isinstance(node, exp.Mul):
            return left * right
        if isinstance(left, int) and isinstance(right, int):
            return int(left / right)  # integer division truncates toward zero
        return Decimal(left) / Decimal(right)
    raise ValueError(f"unsupported operands for {node.key}: {type(left).__name__}, {type(right).__name__}")
