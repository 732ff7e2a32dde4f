"""Execution accuracy: is a predicted query's result the gold query's result?

The rules follow defog's sql-eval (``eval/eval.py``: ``compare_df``, ``subset_df``, ``get_all_minimal_queries``)
and Spider's execution accuracy:

- Results are compared as multisets of rows; row order counts only when the gold query orders at its top level
  (`gold_orders`).
- Columns are matched by their values, not their names: the prediction may name or order its columns
  differently (sql-eval sorts columns by name and then matches columns by content).
- Subset rule (sql-eval only; Spider's rule has none, `allow_extra_columns=False`): a prediction with extra columns is still correct when the gold result's columns are
  each found, by values, among the prediction's columns and the rows then match. An empty gold result never
  counts as a subset (sql-eval does the same).
- Values are normalised before comparing: floats and Decimals are rounded to `float_decimals` places, booleans
  are 0/1, numeric strings are numbers (a Decimal too precise for a float arrives as a string from
  `text2sql.execution`, and drivers differ on numeric types), dates/times are ISO strings, bytes are "0x" hex.
- Duplicates count by default (Spider). ``ignore_duplicates=True`` drops them first, as sql-eval does.
- A gold query may list alternatives: ``{a.x,a.y}`` means any one of those columns or all of them (an empty
  ``{}``, e.g. in GROUP BY, repeats the chosen columns), and ``;`` separates alternative queries
  (`expand_gold_alternatives`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, runtime_checkable

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Tokenizer, TokenType

from text2sql.dialects import check_dialect

logger = logging.getLogger(__name__)

DEFAULT_FLOAT_DECIMALS = 6
# Column-assignment attempts before giving up on a result (only reached by many identical columns).
_MAX_ASSIGNMENTS = 20_000


@runtime_checkable
class _HasColumnsAndRows(Protocol):
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


# A `text2sql.execution.QueryResult`, anything with `columns` and `rows`, or a `(columns, rows)` pair.
ResultLike = _HasColumnsAndRows | tuple[Sequence[str], Sequence[Sequence[Any]]]


def results_match(
    gold: ResultLike,
    pred: ResultLike,
    *,
    order_matters: bool,
    float_decimals: int = DEFAULT_FLOAT_DECIMALS,
    ignore_duplicates: bool = False,
) -> bool:
    """Same rows (as a multiset, or in order when `order_matters`) with the columns matched by values."""
    gold_rows = _normalised_rows(gold, float_decimals)
    pred_rows = _normalised_rows(pred, float_decimals)
    gold_width, pred_width = _width(gold, gold_rows), _width(pred, pred_rows)
    if gold_width != pred_width:
        return False
    return _columns_can_be_matched(
        gold_rows, pred_rows, gold_width, pred_width, order_matters=order_matters, distinct=ignore_duplicates
    )


def gold_subset_of_pred(
    gold: ResultLike,
    pred: ResultLike,
    *,
    order_matters: bool,
    float_decimals: int = DEFAULT_FLOAT_DECIMALS,
    ignore_duplicates: bool = False,
) -> bool:
    """sql-eval's subset rule: every gold column is one of the prediction's columns (by values) and the rows match."""
    gold_rows = _normalised_rows(gold, float_decimals)
    if not gold_rows:
        return False
    pred_rows = _normalised_rows(pred, float_decimals)
    gold_width, pred_width = _width(gold, gold_rows), _width(pred, pred_rows)
    if gold_width > pred_width:
        return False
    return _columns_can_be_matched(
        gold_rows, pred_rows, gold_width, pred_width, order_matters=order_matters, distinct=ignore_duplicates
    )


def execution_match(
    gold_results: Iterable[ResultLike],
    pred: ResultLike,
    *,
    order_matters: bool,
    float_decimals: int = DEFAULT_FLOAT_DECIMALS,
    ignore_duplicates: bool = False,
    allow_extra_columns: bool = True,
) -> bool:
    """Correct when the prediction matches any gold alternative's result exactly or, with `allow_extra_columns`
    (sql-eval's rule), by the subset rule. Spider's rule is `allow_extra_columns=False`."""
    options = {
        "order_matters": order_matters,
        "float_decimals": float_decimals,
        "ignore_duplicates": ignore_duplicates,
    }
    return any(
        results_match(gold, pred, **options) or (allow_extra_columns and gold_subset_of_pred(gold, pred, **options))
        for gold in gold_results
    )


def normalise_value(value: Any, *, float_decimals: int = DEFAULT_FLOAT_DECIMALS) -> Hashable:
    """The comparable, hashable form of one result value (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Decimal)):
        return _normalise_number(value, float_decimals)
    if isinstance(value, str):
        number = _parse_number(value)
        return value if number is None else _normalise_number(number, float_decimals)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return tuple(normalise_value(v, float_decimals=float_decimals) for v in value)
    if isinstance(value, dict):
        return tuple(
            sorted(
                (str(k), repr(normalise_value(v, float_decimals=float_decimals))) for k, v in value.items()
            )
        )
    return str(value)


def expand_gold_alternatives(query: str) -> list[str]:
    """Every query a gold entry accepts: ``;``-separated alternatives, each with its ``{...}`` choices expanded.

    ``SELECT {t.a, t.b} FROM t GROUP BY {}`` gives ``SELECT t.a FROM t GROUP BY t.a``, then ``t.b``, then
    ``t.a, t.b``. Braces and semicolons inside strings, quoted names and comments are left alone.
    """
    alternatives: list[str] = []
    for statement in _split_statements(query):
        for expanded in _expand_braces(statement):
            if expanded not in alternatives:
                alternatives.append(expanded)
    return alternatives


def gold_orders(sql: str, dialect: str) -> bool:
    """Whether the gold query has ORDER BY at its top level (not in a subquery, CTE or window).

    Brace and ``;`` alternatives are expanded first; the answer is True when any alternative orders.
    """
    dialect = check_dialect(dialect)
    alternatives = expand_gold_alternatives(sql) or [sql]
    return any(_orders_at_top_level(alternative, dialect) for alternative in alternatives)


# --- rows and columns -------------------------------------------------------------------------------------

_Row = tuple[Hashable, ...]


def _columns_and_rows(result: ResultLike) -> tuple[Sequence[str], Sequence[Sequence[Any]]]:
    if isinstance(result, tuple) and len(result) == 2:
        return result
    if isinstance(result, _HasColumnsAndRows):
        return result.columns, result.rows
    raise TypeError(f"expected a QueryResult or a (columns, rows) pair, got {type(result).__name__}")


def _normalised_rows(result: ResultLike, float_decimals: int) -> list[_Row]:
    _, rows = _columns_and_rows(result)
    return [tuple(normalise_value(v, float_decimals=float_decimals) for v in row) for row in rows]


def _width(result: ResultLike, rows: list[_Row]) -> int:
    columns, _ = _columns_and_rows(result)
    if columns:
        return len(columns)
    return len(rows[0]) if rows else 0


def _columns_can_be_matched(
    gold_rows: list[_Row],
    pred_rows: list[_Row],
    gold_width: int,
    pred_width: int,
    *,
    order_matters: bool,
    distinct: bool,
) -> bool:
    """Is there an injective map of gold columns onto prediction columns under which the rows agree?"""
    if distinct:
        gold_rows, pred_rows = _dedupe(gold_rows), _dedupe(pred_rows)
    if len(gold_rows) != len(pred_rows):
        return False
    if gold_width == 0:
        return True
    gold_target = gold_rows if order_matters else Counter(gold_rows)
    gold_columns = [tuple(row[i] for row in gold_rows) for i in range(gold_width)]
    pred_columns = [tuple(row[j] for row in pred_rows) for j in range(pred_width)]

    def signature(column: tuple[Hashable, ...]) -> Any:
        return column if order_matters else Counter(column)

    # A gold column can only map to a prediction column holding the same values (the same multiset).
    candidates: list[list[int]] = []
    for gold_column in gold_columns:
        wanted = signature(gold_column)
        matches = [j for j, pred_column in enumerate(pred_columns) if signature(pred_column) == wanted]
        if not matches:
            return False
        candidates.append(matches)

    order = sorted(range(gold_width), key=lambda i: len(candidates[i]))
    assignment: dict[int, int] = {}
    attempts = 0

    def rows_agree() -> bool:
        projected = [tuple(row[assignment[i]] for i in range(gold_width)) for row in pred_rows]
        return projected == gold_target if order_matters else Counter(projected) == gold_target

    def search(depth: int) -> bool:
        nonlocal attempts
        if depth == len(order):
            attempts += 1
            return rows_agree()
        gold_index = order[depth]
        tried: set[tuple[Hashable, ...]] = set()
        for j in candidates[gold_index]:
            # Identical prediction columns are interchangeable: trying one of them is enough.
            if j in assignment.values() or pred_columns[j] in tried:
                continue
            tried.add(pred_columns[j])
            assignment[gold_index] = j
            if search(depth + 1):
                return True
            del assignment[gold_index]
            if attempts >= _MAX_ASSIGNMENTS:
                logger.warning("gave up matching columns after %d assignments", attempts)
                return False
        return False

    return search(0)


def _dedupe(rows: list[_Row]) -> list[_Row]:
    return list(dict.fromkeys(rows))


# --- values -----------------------------------------------------------------------------------------------


def _normalise_number(value: float | Decimal, float_decimals: int) -> Hashable:
    if isinstance(value, Decimal):
        if value.is_nan():
            return "NaN"
        if value.is_infinite():
            return "Infinity" if value > 0 else "-Infinity"
        if value == value.to_integral_value():
            return int(value)  # exact, however large
        value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    rounded = round(value, float_decimals)
    return int(rounded) if rounded.is_integer() else rounded


def _parse_number(text: str) -> Decimal | None:
    candidate = text.strip()
    # Decimal also accepts "1_000" and "sNaN"; neither is a number a database prints.
    if not candidate or "_" in candidate or candidate.lower().lstrip("+-").startswith("snan"):
        return None
    try:
        return Decimal(candidate)
    except InvalidOperation:
        return None


# --- gold query syntax ------------------------------------------------------------------------------------


def _tokens(text: str) -> list[Any] | None:
    try:
        return Tokenizer().tokenize(text)
    except SqlglotError:
        return None


def _split_statements(query: str) -> list[str]:
    tokens = _tokens(query)
    if tokens is None:
        logger.warning("cannot tokenize a gold query; using it whole")
        return [query.strip()] if query.strip() else []
    pieces: list[str] = []
    start = 0
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            pieces.append(query[start : token.start])
            start = token.end + 1
    pieces.append(query[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def _brace_groups(statement: str) -> list[tuple[int, int, list[str]]]:
    """(start, end inclusive, options) of each top-level ``{...}``; options are the comma-separated items."""
    tokens = _tokens(statement)
    if tokens is None:
        return []
    groups: list[tuple[int, int, list[str]]] = []
    open_at: int | None = None
    item_start = 0
    items: list[str] = []
    depth = 0
    for token in tokens:
        kind = token.token_type
        if open_at is None:
            if kind == TokenType.L_BRACE:
                open_at, item_start, items, depth = token.start, token.end + 1, [], 0
            continue
        if kind in (TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE):
            depth += 1
        elif kind in (TokenType.R_PAREN, TokenType.R_BRACKET) or (kind == TokenType.R_BRACE and depth > 0):
            depth -= 1
        elif kind == TokenType.COMMA and depth == 0:
            items.append(statement[item_start : token.start])
            item_start = token.end + 1
        elif kind == TokenType.R_BRACE:
            items.append(statement[item_start : token.start])
            options = [item.strip() for item in items if item.strip()]
            groups.append((open_at, token.end, options))
            open_at = None
    return groups


def _expand_braces(statement: str) -> list[str]:
    groups = _brace_groups(statement)
    choices_per_group = [
        [
            ", ".join(combo)
            for size in range(1, len(options) + 1)
            for combo in itertools.combinations(options, size)
        ]
        for _, _, options in groups
        if options
    ]
    if not choices_per_group:
        return [statement]
    expanded: list[str] = []
    for picked in itertools.product(*choices_per_group):
        text = statement
        # An empty {} repeats the first group's choice (sql-eval's "GROUP BY {}").
        fills = iter(picked)
        replacements = [next(fills) if options else picked[0] for _, _, options in groups]
        # Right to left, so earlier offsets stay valid.
        for (start, end, _), replacement in reversed(list(zip(groups, replacements, strict=True))):
            text = text[:start] + replacement + text[end + 1 :]
        expanded.append(text)
    return expanded


def _orders_at_top_level(sql: str, dialect: str) -> bool:
    try:
        statement = sqlglot.parse_one(sql, read=dialect)
    except SqlglotError as e:
        raise ValueError(f"cannot parse the gold query as {dialect}: {e}") from e
    while isinstance(statement, exp.Subquery):
        statement = statement.this
    return bool(statement.args.get("order"))
