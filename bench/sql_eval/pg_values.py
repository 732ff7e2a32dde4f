"""PostgreSQL's values in Python: intervals, type families, casts (assignment casts too), text output, and the
value a PostgreSQL column would hold, as SQLite stores it (`to_sqlite_value`)."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlglot import exp

SERIAL_TYPES = {exp.DataType.Type.SERIAL, exp.DataType.Type.BIGSERIAL, exp.DataType.Type.SMALLSERIAL}


@dataclass(frozen=True)
class Interval:
    months: int = 0
    days: int = 0
    micros: int = 0

    def __neg__(self) -> Interval:
        return Interval(-self.months, -self.days, -self.micros)

    def __add__(self, other: Interval) -> Interval:
        return Interval(self.months + other.months, self.days + other.days, self.micros + other.micros)


_INTERVAL_UNITS: dict[str, tuple[str, int]] = {}
for _names, _unit in (
    (("microsecond", "microseconds", "us", "usec", "usecs"), ("micros", 1)),
    (("millisecond", "milliseconds", "ms", "msec", "msecs"), ("micros", 1000)),
    (("second", "seconds", "sec", "secs", "s"), ("micros", 1_000_000)),
    (("minute", "minutes", "min", "mins", "m"), ("micros", 60_000_000)),
    (("hour", "hours", "hr", "hrs", "h"), ("micros", 3_600_000_000)),
    (("day", "days", "d"), ("days", 1)),
    (("week", "weeks", "w"), ("days", 7)),
    (("month", "months", "mon", "mons"), ("months", 1)),
    (("year", "years", "yr", "yrs", "y"), ("months", 12)),
    (("decade", "decades"), ("months", 120)),
    (("century", "centuries"), ("months", 1200)),
):
    for _name in _names:
        _INTERVAL_UNITS[_name] = _unit


def parse_interval(text: str) -> Interval:
    """PostgreSQL interval input: '5 days', '1 year 2 mons', '-3 weeks', '10:30:00', '1 day 02:00'."""
    total = Interval()
    tokens = text.strip().lower().replace(",", " ").split()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        clock = re.fullmatch(r"([+-]?)(\d+):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?", token)
        if clock:
            sign = -1 if clock.group(1) == "-" else 1
            seconds = (
                Decimal(clock.group(2)) * 3600 + Decimal(clock.group(3)) * 60 + Decimal(clock.group(4) or 0)
            )
            total += Interval(micros=int(sign * seconds * 1_000_000))
            index += 1
            continue
        number = re.fullmatch(r"([+-]?\d+(?:\.\d+)?)([a-z]*)", token)
        if not number:
            raise ValueError(f"unsupported interval {text!r}")
        unit = number.group(2) or (tokens[index + 1] if index + 1 < len(tokens) else "")
        index += 1 if number.group(2) else 2
        if unit not in _INTERVAL_UNITS:
            raise ValueError(f"unsupported interval unit {unit!r} in {text!r}")
        field_name, scale = _INTERVAL_UNITS[unit]
        amount = Decimal(number.group(1)) * scale
        if field_name == "months":
            whole = int(amount)
            total += Interval(months=whole)
            amount = (amount - whole) * 30  # a fraction of a month is days (PostgreSQL: 30 days a month)
            field_name = "days"
        if field_name == "days":
            whole = int(amount)
            total += Interval(days=whole)
            amount = (amount - whole) * 86_400_000_000
            field_name = "micros"
        total += Interval(micros=int(amount))
    return total


def add_interval(value: dt.date | dt.datetime, interval: Interval) -> dt.datetime:
    """date/timestamp + interval as PostgreSQL computes it: months (clamped to the month's end), days, time."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
    if interval.months:
        month_index = moment.year * 12 + moment.month - 1 + interval.months
        year, month = divmod(month_index, 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        moment = moment.replace(year=year, month=month + 1, day=day)
    return moment + dt.timedelta(days=interval.days, microseconds=interval.micros)


def type_family(kind: exp.DataType | None) -> str:
    if kind is None:
        return "text"
    t = exp.DataType.Type
    if kind.this == t.DATE:
        return "date"
    if kind.this in (t.TIMESTAMP, t.DATETIME, t.TIMESTAMPNTZ):
        return "timestamp"
    if kind.this in (t.TIMESTAMPTZ, t.TIMESTAMPLTZ):
        return "timestamptz"
    if kind.this in (t.TIME, t.TIMETZ):
        return "time"
    if kind.this in (t.TINYINT, t.SMALLINT, t.INT, t.BIGINT, *SERIAL_TYPES):
        return "int"
    if kind.this in (t.DECIMAL, t.FLOAT, t.DOUBLE, t.MONEY):
        return "numeric"
    if kind.this == t.BOOLEAN:
        return "bool"
    if kind.this == t.INTERVAL:
        return "interval"
    return "text"


def cast(value: Any, family: str) -> Any:
    """PostgreSQL's cast of an evaluated value to a type family (also its assignment cast on INSERT)."""
    if value is None:
        return None
    if family == "date":
        if isinstance(value, dt.datetime):
            return (value.astimezone(dt.timezone.utc) if value.tzinfo else value).date()
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value).strip()[:10])
    if family in ("timestamp", "timestamptz"):
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.strip())
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time())
        if family == "timestamp":
            return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if family == "int":
        if isinstance(value, bool):
            return int(value)
        number = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
        return int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))  # numeric -> integer rounds half away
    if family == "numeric":
        return Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
    if family == "bool":
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("t", "true", "y", "yes", "on", "1"):
                return True
            if text in ("f", "false", "n", "no", "off", "0"):
                return False
            raise ValueError(f"invalid boolean {value!r}")
        return bool(value)
    if family == "interval":
        return value if isinstance(value, Interval) else parse_interval(str(value))
    if family == "time":
        return value.time() if isinstance(value, dt.datetime) else dt.time.fromisoformat(str(value).strip())
    return pg_text(value)


def pg_text(value: Any) -> str:
    """PostgreSQL's text output of a value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        text = value.replace(tzinfo=None).isoformat(sep=" ")
        if "." in text:
            text = text.rstrip("0")
        if value.tzinfo:
            offset = value.utcoffset() or dt.timedelta()
            sign = "-" if offset < dt.timedelta() else "+"
            minutes = abs(int(offset.total_seconds())) // 60
            text += f"{sign}{minutes // 60:02d}" + (f":{minutes % 60:02d}" if minutes % 60 else "")
        return text
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Interval):
        raise ValueError("intervals as text are not supported")
    return str(value)


def to_sqlite_value(value: Any, kind: exp.DataType | None, *, column: str) -> Any:
    """The value PostgreSQL would store in a column of `kind`, as SQLite stores it (dates as ISO text)."""
    family = type_family(kind)
    if family in ("date", "timestamp", "timestamptz", "time") and isinstance(value, str):
        try:
            value = cast(value, family)
        except ValueError:
            return (
                value  # text PostgreSQL accepts but Python does not parse (e.g. 'infinity'): kept as written
            )
    try:
        typed = cast(value, family)
    except (ValueError, ArithmeticError) as e:
        shown = kind.sql("postgres") if kind else "text"
        raise ValueError(f"cannot store {value!r} in {column} ({shown}): {e}") from e
    if isinstance(typed, bool):
        return int(typed)
    if typed is None or isinstance(typed, (int, str)):
        return typed
    if isinstance(typed, Decimal):
        return float(typed)
    return pg_text(typed)  # dates, timestamps and times as PostgreSQL prints them
