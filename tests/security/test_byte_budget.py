"""A request's result bytes are bounded across all of its candidates: the budget the server passes to every
execution of one request is shared, so n candidates cannot fetch n times the limit."""

from __future__ import annotations

from pathlib import Path

from text2sql.pipeline.budget import ByteBudget
from text2sql.pipeline.candidate import Dialects, check_candidate
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.schema.introspect import introspect

# About 7 MB of JSON: 1000 rows of a 7000-character hex string.
BIG = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x, hex(zeroblob(3500)) AS b FROM c"


def test_candidates_share_one_budget(sqlite_file: Path) -> None:
    url = f"sqlite:///{sqlite_file}"
    budget_bytes = 16 * 1024 * 1024
    target = ExecutionTarget(url=url, dialect="sqlite", max_rows=5000, timeout_s=10, max_bytes=budget_bytes)
    budget = ByteBudget(target.max_bytes)
    dialects = Dialects(generation="sqlite", answer="sqlite", execution="sqlite")
    schema = introspect(url, sample_values=0)
    outcomes = [
        check_candidate(BIG, dialects=dialects, schema=schema, validate=True, target=target, budget=budget)
        for _ in range(4)
    ]
    results = [o.result for o in outcomes if o.result is not None]
    assert results[0].row_count == 1000 and not results[0].truncated
    assert results[1].row_count == 1000 and not results[1].truncated
    # The third gets what is left, and the fourth nothing: it is not run at all.
    assert results[2].truncated and results[2].truncated_by == "bytes" and results[2].row_count < 1000
    assert outcomes[3].result is None and outcomes[3].code == "byte_budget"
    assert sum(r.bytes for r in results) <= budget_bytes
