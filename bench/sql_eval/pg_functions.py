"""PostgreSQL's date functions on constant values: DATE_TRUNC, EXTRACT, and TO_CHAR's common template patterns."""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal
from typing import Any

from bench.sql_eval.pg_values import Interval


def date_trunc(unit: str, value: dt.date | dt.datetime) -> dt.datetime:
    # DATE_TRUNC of a date is DATE_TRUNC of a timestamptz at midnight in the session's time zone (UTC here).
    moment = (
        value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time(), dt.timezone.utc)
    )
    unit = unit.lower()
    if unit in ("microsecond", "microseconds"):
        return moment
    if unit in ("millisecond", "milliseconds"):
        return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    if unit in ("second", "seconds"):
        return moment.replace(microsecond=0)
    if unit in ("minute", "minutes"):
        return moment.replace(second=0, microsecond=0)
    if unit in ("hour", "hours"):
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in ("day", "days"):
        return day
    if unit in ("week", "weeks"):
        return day - dt.timedelta(days=day.weekday())  # ISO weeks start on Monday
    if unit in ("month", "months"):
        return day.replace(day=1)
    if unit in ("quarter", "quarters"):
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if unit in ("year", "years"):
        return day.replace(month=1, day=1)
    if unit in ("decade", "decades"):
        return day.replace(year=day.year // 10 * 10, month=1, day=1)
    raise ValueError(f"unsupported DATE_TRUNC unit {unit!r}")


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def extract(field_name: str, value: Any) -> Decimal:
    if isinstance(value, Interval):
        raise ValueError("EXTRACT from an interval is not supported")
    moment = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
    name = field_name.lower()
    if name == "epoch":
        aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
        return Decimal((aware - _EPOCH) // dt.timedelta(microseconds=1)).scaleb(-6)  # numeric(…, 6)
    simple = {
        "year": moment.year,
        "month": moment.month,
        "day": moment.day,
        "hour": moment.hour,
        "minute": moment.minute,
        "dow": moment.isoweekday() % 7,
        "isodow": moment.isoweekday(),
        "doy": moment.timetuple().tm_yday,
        "week": moment.isocalendar()[1],
        "isoyear": moment.isocalendar()[0],
        "quarter": (moment.month - 1) // 3 + 1,
        "decade": moment.year // 10,
        "century": (moment.year + 99) // 100,
    }
    if name in simple:
        return Decimal(simple[name])
    if name in ("second", "seconds"):
        return Decimal(moment.second) + Decimal(moment.microsecond) / Decimal(1_000_000)
    if name == "milliseconds":
        return Decimal(moment.second * 1000) + Decimal(moment.microsecond) / Decimal(1000)
    if name == "microseconds":
        return Decimal(moment.second * 1_000_000 + moment.microsecond)
    raise ValueError(f"unsupported EXTRACT field {field_name!r}")


# TO_CHAR template patterns (PostgreSQL formatting.c), longest first; numeric ones match in any case.
_NUMERIC_PATTERNS = (
    "HH24", "HH12", "HH", "MI", "MS", "US", "SSSSS", "SSSS", "SS", "Y,YYY", "YYYY", "YYY", "YY", "Y",
    "IYYY", "IYY", "IY", "IDDD", "ID", "IW", "I", "MM", "DDD", "DD", "D", "WW", "W", "Q", "J", "CC",
)  # fmt: skip
_TEXT_PATTERNS = ("MONTH", "Month", "month", "MON", "Mon", "mon", "DAY", "Day", "day", "DY", "Dy", "dy")
_MERIDIEM = ("A.M.", "a.m.", "P.M.", "p.m.", "AM", "am", "PM", "pm")


def to_char(value: Any, template: str) -> str:
    """PostgreSQL's TO_CHAR(timestamp|date, template) for the common template patterns."""
    if value is None:
        return None  # type: ignore[return-value]
    moment = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
    out: list[str] = []
    index, fill_mode = 0, False
    while index < len(template):
        rest = template[index:]
        if rest[:2].upper() == "FM":
            fill_mode, index = True, index + 2
            continue
        if rest[0] == '"':
            end = index + 1
            while end < len(template) and template[end] != '"':
                if template[end] == "\\" and end + 1 < len(template):
                    end += 1
                out.append(template[end])
                end += 1
            index = end + 1
            continue
        if rest[0] == "\\" and len(rest) > 1:
            out.append(rest[1])
            index += 2
            continue
        text_pattern = next((p for p in _TEXT_PATTERNS if rest.startswith(p)), None)
        numeric_pattern = next((p for p in _NUMERIC_PATTERNS if rest.upper().startswith(p)), None)
        meridiem = next((p for p in _MERIDIEM if rest.startswith(p)), None)
        if text_pattern and (not numeric_pattern or len(text_pattern) >= len(numeric_pattern)):
            out.append(_to_char_text(moment, text_pattern, fill_mode))
            index += len(text_pattern)
        elif meridiem and not numeric_pattern:
            word = "AM" if moment.hour < 12 else "PM"
            if "." in meridiem:
                word = f"{word[0]}.{word[1]}."
            out.append(word if meridiem[0].isupper() else word.lower())
            index += len(meridiem)
        elif numeric_pattern:
            number, width = _to_char_number(moment, numeric_pattern)
            text = str(number) if fill_mode or width == 0 else str(number).zfill(width)
            index += len(numeric_pattern)
            suffix = template[index : index + 2]
            if suffix in ("TH", "th"):
                ordinal = (
                    "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
                )
                text += ordinal.upper() if suffix == "TH" else ordinal
                index += 2
            out.append(text)
        else:
            out.append(rest[0])
            index += 1
        fill_mode = False
    return "".join(out)


def _to_char_number(moment: dt.datetime, pattern: str) -> tuple[int, int]:
    iso_year, iso_week, iso_day = moment.isocalendar()
    hour12 = moment.hour % 12 or 12
    values: dict[str, tuple[int, int]] = {
        "HH24": (moment.hour, 2), "HH12": (hour12, 2), "HH": (hour12, 2), "MI": (moment.minute, 2),
        "SS": (moment.second, 2), "MS": (moment.microsecond // 1000, 3), "US": (moment.microsecond, 6),
        "SSSS": (moment.hour * 3600 + moment.minute * 60 + moment.second, 0),
        "SSSSS": (moment.hour * 3600 + moment.minute * 60 + moment.second, 0),
        "YYYY": (moment.year, 4), "YYY": (moment.year % 1000, 3), "YY": (moment.year % 100, 2),
        "Y": (moment.year % 10, 1), "IYYY": (iso_year, 4), "IYY": (iso_year % 1000, 3), "IY": (iso_year % 100, 2),
        "I": (iso_year % 10, 1), "IW": (iso_week, 2), "ID": (iso_day, 1),
        "IDDD": ((iso_week - 1) * 7 + iso_day, 3), "MM": (moment.month, 2),
        "DDD": (moment.timetuple().tm_yday, 3), "DD": (moment.day, 2), "D": (moment.isoweekday() % 7 + 1, 1),
        "WW": ((moment.timetuple().tm_yday - 1) // 7 + 1, 2), "W": ((moment.day - 1) // 7 + 1, 1),
        "Q": ((moment.month - 1) // 3 + 1, 1), "J": (moment.toordinal() + 1_721_425, 0),
        "CC": ((moment.year + 99) // 100, 2),
    }  # fmt: skip
    if pattern == "Y,YYY":
        raise ValueError("TO_CHAR pattern Y,YYY is not supported")
    return values[pattern]


def _to_char_text(moment: dt.datetime, pattern: str, fill_mode: bool) -> str:
    upper = pattern.upper()
    if upper in ("MONTH", "MON"):
        word = calendar.month_name[moment.month]
    else:
        word = calendar.day_name[moment.weekday()]
    if upper in ("MON", "DY"):
        word = word[:3]
    elif not fill_mode:
        word = word.ljust(9)  # MONTH and DAY are blank-padded to 9 characters unless FM
    if pattern.isupper():
        return word.upper()
    if pattern.islower():
        return word.lower()
    return word
