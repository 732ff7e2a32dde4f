"""Reading training data: JSON lines, each parsed into a strict model and checked, every bad line reported.

A bad line is never skipped: `DataError` lists each one as `path:line: what is wrong` (the first
`MAX_LISTED_PROBLEMS` in its message, all of them in `problems`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

# A file with thousands of bad lines has one cause; the first ones are enough to find it.
MAX_LISTED_PROBLEMS = 20

Parsed = TypeVar("Parsed", bound=BaseModel)
Checked = TypeVar("Checked")


class DataError(ValueError):
    """Training data that cannot be used; `problems` holds one `path:line: what is wrong` per bad line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:MAX_LISTED_PROBLEMS]
        more = len(problems) - len(shown)
        super().__init__("\n".join(shown) + (f"\n... and {more} more bad lines" if more else ""))


class BadLine(ValueError):
    """What is wrong with one line; the reader adds the path and the line number."""


def read_checked_lines(
    path: str | Path, model: type[Parsed], check: Callable[[Parsed, str], Checked]
) -> list[Checked]:
    """`check(record, "path:line")` of every non-blank line parsed as `model`; `check` raises BadLine to refuse
    one. DataError when any line is bad, or when there is none."""
    path = Path(path)
    checked: list[Checked] = []
    problems: list[str] = []
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                checked.append(check(parse_line(line, model), f"{path}:{number}"))
            except UnicodeDecodeError as e:
                problems.append(f"{path}:{number}: not UTF-8 ({e.reason} at byte {e.start})")
            except BadLine as e:
                problems.append(f"{path}:{number}: {e}")
    if problems:
        raise DataError(problems)
    if not checked:
        raise DataError([f"{path}: holds no training records"])
    return checked


def parse_line(line: str, model: type[Parsed]) -> Parsed:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as e:
        raise BadLine(f"not JSON: {e}") from None
    try:
        return model.model_validate(value)
    except ValidationError as e:
        raise BadLine("; ".join(_field_error(error) for error in e.errors(include_url=False))) from None


def _field_error(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
