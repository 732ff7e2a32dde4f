"""Execution-accuracy matching, on small hand-made results that exercise each rule."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from text2sql.accuracy import (
    execution_match,
    expand_gold_alternatives,
    gold_orders,
    gold_subset_of_pred,
    normalise_value,
    results_match,
)
from text2sql.execution import QueryResult


def result(columns: list[str], rows: list[list[object]]) -> tuple[list[str], list[list[object]]]:
    return columns, rows


# --- results_match ----------------------------------------------------------------------------------------


def test_same_rows_in_another_order_match_when_order_does_not_matter() -> None:
    gold = result(["name", "n"], [["a", 1], ["b", 2], ["c", 3]])
    pred = result(["name", "n"], [["c", 3], ["a", 1], ["b", 2]])
    assert results_match(gold, pred, order_matters=False)
    assert not results_match(gold, pred, order_matters=True)


def test_order_matters_accepts_the_same_order() -> None:
    gold = result(["n"], [[3], [2], [1]])
    assert results_match(gold, result(["x"], [[3], [2], [1]]), order_matters=True)


def test_rows_are_a_multiset_duplicates_count() -> None:
    gold = result(["a"], [[1], [1], [2]])
    assert not results_match(gold, result(["a"], [[1], [2], [2]]), order_matters=False)
    assert not results_match(gold, result(["a"], [[1], [2]]), order_matters=False)
    assert results_match(gold, result(["a"], [[2], [1], [1]]), order_matters=False)


def test_ignore_duplicates_follows_sql_eval() -> None:
    gold = result(["a"], [[1], [1], [2]])
    assert results_match(gold, result(["a"], [[1], [2]]), order_matters=False, ignore_duplicates=True)


def test_columns_are_matched_by_values_not_names_or_position() -> None:
    gold = result(["name", "total"], [["a", 10], ["b", 20]])
    pred = result(["sum_total", "customer"], [[20, "b"], [10, "a"]])
    assert results_match(gold, pred, order_matters=False)
    assert results_match(gold, pred, order_matters=True) is False  # rows come in another order


def test_column_permutation_must_keep_rows_together() -> None:
    # Each column has the same values, but the pairs differ: (a, 1), (b, 2) versus (a, 2), (b, 1).
    gold = result(["x", "y"], [["a", 1], ["b", 2]])
    pred = result(["x", "y"], [["a", 2], ["b", 1]])
    assert not results_match(gold, pred, order_matters=False)


def test_identical_columns_do_not_blow_up_the_search() -> None:
    width = 12
    gold = result([f"c{i}" for i in range(width)], [[None] * width for _ in range(3)])
    pred = result([f"d{i}" for i in range(width)], [[None] * width for _ in range(3)])
    assert results_match(gold, pred, order_matters=False)


def test_different_column_counts_do_not_match_exactly() -> None:
    gold = result(["a"], [[1]])
    assert not results_match(gold, result(["a", "b"], [[1, 2]]), order_matters=False)


def test_empty_results_match_when_the_shapes_agree() -> None:
    assert results_match(result(["a"], []), result(["b"], []), order_matters=False)
    assert not results_match(result(["a"], []), result(["a"], [[1]]), order_matters=False)


def test_floats_are_compared_at_a_tolerance() -> None:
    gold = result(["avg"], [[1234.5666666666667]])
    assert results_match(gold, result(["avg"], [[1234.5666666666666]]), order_matters=False)
    assert results_match(gold, result(["avg"], [[Decimal("1234.56666666666666667")]]), order_matters=False)
    assert not results_match(gold, result(["avg"], [[1234.57]]), order_matters=False)
    assert results_match(gold, result(["avg"], [[1234.57]]), order_matters=False, float_decimals=2)


def test_integers_floats_and_decimals_are_one_kind_of_number() -> None:
    gold = result(["n"], [[3], [12345678901]])
    assert results_match(gold, result(["n"], [[3.0], [Decimal("12345678901")]]), order_matters=False)


def test_numeric_strings_equal_numbers() -> None:
    gold = result(["n"], [[1.5], [2]])
    assert results_match(gold, result(["n"], [["1.5"], ["2"]]), order_matters=False)
    assert results_match(gold, result(["n"], [["1.50"], [" 2 "]]), order_matters=False)


def test_non_numeric_strings_stay_strings() -> None:
    assert not results_match(result(["s"], [["abc"]]), result(["s"], [["ABC"]]), order_matters=False)
    assert not results_match(result(["s"], [["1_000"]]), result(["s"], [[1000]]), order_matters=False)


def test_none_only_equals_none() -> None:
    assert results_match(result(["a"], [[None]]), result(["a"], [[None]]), order_matters=False)
    assert not results_match(result(["a"], [[None]]), result(["a"], [[0]]), order_matters=False)
    assert not results_match(result(["a"], [[None]]), result(["a"], [[""]]), order_matters=False)


def test_booleans_are_zero_and_one() -> None:
    assert results_match(result(["b"], [[True], [False]]), result(["b"], [[1], [0]]), order_matters=True)


def test_dates_match_their_iso_strings() -> None:
    gold = result(["d"], [[dt.date(2020, 1, 31)], [dt.datetime(2020, 1, 31, 12, 30)]])
    pred = result(["d"], [["2020-01-31"], ["2020-01-31T12:30:00"]])
    assert results_match(gold, pred, order_matters=True)


def test_non_finite_values_match_the_execution_layers_strings() -> None:
    gold = result(["x"], [[float("nan")], [float("inf")]])
    assert results_match(gold, result(["x"], [["NaN"], ["Infinity"]]), order_matters=True)
    assert results_match(gold, result(["x"], [[Decimal("NaN")], [Decimal("Infinity")]]), order_matters=True)


def test_normalise_value_examples() -> None:
    assert normalise_value(Decimal("2.000")) == 2
    assert normalise_value(0.1 + 0.2) == 0.3
    assert normalise_value(b"\x01\xff") == "0x01ff"
    assert normalise_value(memoryview(b"\x01")) == "0x01"
    assert normalise_value([1, "2"]) == (1, 2)


def test_accepts_query_results() -> None:
    gold = QueryResult(columns=["a"], rows=[[1], [2]], row_count=2, truncated=False, elapsed_ms=1.0)
    pred = QueryResult(columns=["b"], rows=[[2], [1]], row_count=2, truncated=False, elapsed_ms=2.0)
    assert results_match(gold, pred, order_matters=False)


def test_rejects_things_that_are_not_results() -> None:
    with pytest.raises(TypeError):
        results_match("nope", result(["a"], []), order_matters=False)  # type: ignore[arg-type]


# --- subset rule ------------------------------------------------------------------------------------------


def test_extra_prediction_columns_pass_the_subset_rule() -> None:
    gold = result(["name"], [["a"], ["b"]])
    pred = result(["id", "name", "n"], [[2, "b", 20], [1, "a", 10]])
    assert not results_match(gold, pred, order_matters=False)
    assert gold_subset_of_pred(gold, pred, order_matters=False)


def test_subset_needs_every_gold_column_and_the_same_rows() -> None:
    gold = result(["name", "n"], [["a", 10], ["b", 20]])
    assert not gold_subset_of_pred(gold, result(["name", "id"], [["a", 1], ["b", 2]]), order_matters=False)
    # The values exist, but in other rows.
    assert not gold_subset_of_pred(
        gold, result(["name", "n", "id"], [["a", 20, 1], ["b", 10, 2]]), order_matters=False
    )
    # An extra row is a different result.
    assert not gold_subset_of_pred(
        gold, result(["name", "n", "id"], [["a", 10, 1], ["b", 20, 2], ["c", 30, 3]]), order_matters=False
    )


def test_subset_respects_order_when_it_matters() -> None:
    gold = result(["name"], [["b"], ["a"]])
    pred = result(["id", "name"], [[1, "a"], [2, "b"]])
    assert gold_subset_of_pred(gold, pred, order_matters=False)
    assert not gold_subset_of_pred(gold, pred, order_matters=True)


def test_empty_gold_is_never_a_subset() -> None:
    assert not gold_subset_of_pred(result(["a"], []), result(["a", "b"], []), order_matters=False)


def test_execution_match_tries_every_gold_alternative() -> None:
    by_name = result(["name"], [["a"], ["b"]])
    by_id = result(["id"], [[1], [2]])
    pred = result(["id"], [[2], [1]])
    assert execution_match([by_name, by_id], pred, order_matters=False)
    assert not execution_match([by_name], pred, order_matters=False)
    assert execution_match([by_name], result(["id", "name"], [[1, "a"], [2, "b"]]), order_matters=False)


# --- gold alternatives ------------------------------------------------------------------------------------


def test_braces_expand_to_each_column_then_all() -> None:
    assert expand_gold_alternatives("SELECT {t.a, t.b} FROM t") == [
        "SELECT t.a FROM t",
        "SELECT t.b FROM t",
        "SELECT t.a, t.b FROM t",
    ]


def test_empty_braces_repeat_the_choice() -> None:
    assert expand_gold_alternatives("SELECT {t.a,t.b}, COUNT(*) FROM t GROUP BY {} ORDER BY 2") == [
        "SELECT t.a, COUNT(*) FROM t GROUP BY t.a ORDER BY 2",
        "SELECT t.b, COUNT(*) FROM t GROUP BY t.b ORDER BY 2",
        "SELECT t.a, t.b, COUNT(*) FROM t GROUP BY t.a, t.b ORDER BY 2",
    ]


def test_semicolons_separate_alternatives() -> None:
    assert expand_gold_alternatives("SELECT a FROM t;SELECT b FROM t; ") == [
        "SELECT a FROM t",
        "SELECT b FROM t",
    ]


def test_semicolons_and_braces_combine_and_repeat_once() -> None:
    gold = "SELECT {x.a, x.b} FROM x;SELECT x.a FROM x"
    assert expand_gold_alternatives(gold) == [
        "SELECT x.a FROM x",
        "SELECT x.b FROM x",
        "SELECT x.a, x.b FROM x",
    ]


def test_braces_and_semicolons_in_strings_and_comments_are_text() -> None:
    gold = "SELECT '{a,b};' AS s, {t.a, COALESCE(t.b, 0)} FROM t /* {x}; */"
    assert expand_gold_alternatives(gold) == [
        "SELECT '{a,b};' AS s, t.a FROM t /* {x}; */",
        "SELECT '{a,b};' AS s, COALESCE(t.b, 0) FROM t /* {x}; */",
        "SELECT '{a,b};' AS s, t.a, COALESCE(t.b, 0) FROM t /* {x}; */",
    ]


def test_a_plain_query_is_its_own_only_alternative() -> None:
    assert expand_gold_alternatives("SELECT 1;") == ["SELECT 1"]
    assert expand_gold_alternatives("  ") == []


# --- gold_orders ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "orders"),
    [
        ("SELECT a FROM t ORDER BY a", True),
        ("SELECT a FROM t ORDER BY a DESC LIMIT 3", True),
        ("SELECT a FROM t LIMIT 3", False),
        ("SELECT a FROM t", False),
        ("SELECT * FROM (SELECT a FROM t ORDER BY a) AS s", False),
        ("WITH s AS (SELECT a FROM t ORDER BY a) SELECT a FROM s", False),
        ("WITH s AS (SELECT a FROM t) SELECT a FROM s ORDER BY a", True),
        ("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1", True),
        ("SELECT a FROM t UNION SELECT b FROM u", False),
        ("SELECT ROW_NUMBER() OVER (ORDER BY a) FROM t", False),
        ("SELECT a FROM t WHERE a IN (SELECT a FROM u ORDER BY a LIMIT 1)", False),
        ("(SELECT a FROM t ORDER BY a)", True),
        ("SELECT {t.a, t.b} FROM t ORDER BY t.a", True),
    ],
)
def test_gold_orders_only_at_the_top_level(sql: str, orders: bool) -> None:
    assert gold_orders(sql, "postgres") is orders


def test_gold_orders_reads_the_dialect() -> None:
    assert gold_orders("SELECT TOP 3 a FROM t ORDER BY a", "tsql")
    with pytest.raises(ValueError):
        gold_orders("SELECT a FROM t", "nope")
    with pytest.raises(ValueError, match="cannot parse"):
        gold_orders("SELECT (", "sqlite")


def test_spiders_rule_refuses_the_extra_columns_sql_evals_rule_accepts() -> None:
    gold = (["name"], [["a"], ["b"]])
    wider = (["id", "name"], [[1, "a"], [2, "b"]])
    assert execution_match([gold], wider, order_matters=False)
    assert not execution_match([gold], wider, order_matters=False, allow_extra_columns=False)
    # Columns in another order are still right by Spider's rule.
    assert execution_match(
        [(["a", "b"], [[1, 2]])], (["b", "a"], [[2, 1]]), order_matters=False, allow_extra_columns=False
    )
