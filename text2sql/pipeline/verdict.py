"""Which validation failures mean the SQL would do more than read: the request is refused, nothing runs."""

from __future__ import annotations

# Not a wrong answer but a dangerous one: a write, a function off the allow-list, a schema that is not
# exposed, stacked statements or an executable comment. Everything else is an ordinary failure.
UNSAFE_CODES = frozenset(
    {"not_read_only", "forbidden_function", "forbidden_schema", "multiple_statements", "executable_comment"}
)


def is_unsafe(code: str | None) -> bool:
    return code in UNSAFE_CODES
