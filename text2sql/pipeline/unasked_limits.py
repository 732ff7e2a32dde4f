"""A follow-up's answer that keeps only the top row when nobody asked for it. Asked "only for invoices billed to
Germany" after `SELECT year, SUM(Total) FROM Invoice GROUP BY year ORDER BY year`, small models often return the
edited query with `LIMIT 1` (or `ORDER BY ... DESC LIMIT 10`) added: one year instead of all. When the previous
turn's SQL had no LIMIT and the follow-up says nothing that ranks or counts off rows (top, most, best, highest,
first, last, 最, 前...), the added LIMIT is dropped; its ORDER BY stays, as it changes no row. No model call.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from text2sql.pipeline.scopes import rewritten
from text2sql.schema import DatabaseSchema

# Words that ask for some rows off the top or bottom of an order.
_RANKING = re.compile(
    r"\b(?:top|bottom|first|last|most|least|best|worst|highest|lowest|largest|smallest|biggest|greatest|fewest|"
    r"longest|shortest|oldest|youngest|newest|latest|earliest|cheapest|priciest|maximum|minimum|max|min|limit|"
    r"single|one)\b|\w+est\b|最|前|后|第一|排名",
    re.IGNORECASE,
)
# "-est" words that rank nothing.
_NOT_RANKING = {"interest", "interested", "rest", "test", "request", "west", "forest", "contest", "suggest", "guest",
                "honest", "modest", "protest", "invest", "harvest", "digest", "manifest", "nest", "best-selling"}


def asks_for_ranked_rows(question: str) -> bool:
    return any(match.group(0).lower() not in _NOT_RANKING for match in _RANKING.finditer(question))


def drop_unasked_limit(
    sql: str, *, dialect: str, schema: DatabaseSchema, question: str | None, previous_sql: str | None
) -> tuple[str, list[str]] | None:
    """`sql` without the LIMIT its follow-up did not ask for, and a note; None when it keeps it."""
    del schema  # the same signature as the other rewrites; only the statements are read
    if not question or not previous_sql or asks_for_ranked_rows(question) or _limited(previous_sql, dialect):
        return None
    return rewritten(sql, dialect, _drop_limit)


def _limited(sql: str, dialect: str) -> bool:
    """The previous turn's statement ends in a LIMIT (or cannot be read: then nothing is dropped)."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except (SqlglotError, RecursionError, ValueError):
        return True
    return tree.args.get("limit") is not None or tree.args.get("offset") is not None


def _drop_limit(tree: exp.Expression) -> list[str]:
    limit = tree.args.get("limit")
    if limit is None or tree.args.get("offset") is not None:
        return []
    tree.set("limit", None)
    return [f"dropped {limit.sql()}: the follow-up asks for no top or bottom rows, and the previous query had none"]
