"""Short, single-line error details for logs and HTTP messages (drivers' messages run to many lines)."""

from __future__ import annotations

DEFAULT_MAX_CHARS = 300


def first_line(detail: BaseException | str, *, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The first non-empty line of an error or message, cut to `max_chars`; an empty error gives its type name."""
    text = str(detail).strip()
    if not text:
        return type(detail).__name__ if isinstance(detail, BaseException) else ""
    line = text.splitlines()[0]
    return line if len(line) <= max_chars else line[:max_chars] + "..."
