"""Pick the answer most candidates agree on: by result when they ran, else by normalised SQL."""

from __future__ import annotations

import json

from text2sql.pipeline.answer import Candidate
from text2sql.pipeline.candidate import CandidateOutcome


def vote(outcomes: list[CandidateOutcome], *, n: int) -> tuple[CandidateOutcome | None, list[Candidate] | None]:
    good = [o for o in outcomes if o.ok]
    if n == 1:
        return (good[0] if good else None), None
    groups: dict[str, list[CandidateOutcome]] = {}
    for outcome in good:
        groups.setdefault(agreement_key(outcome), []).append(outcome)
    # The heaviest group wins; ties go to the group whose first member came first. A candidate that needed a join
    # added is half a vote: sampled candidates that start from the wrong table all get the same join, and their
    # inflated rows would agree with each other.
    ranked = sorted(groups.values(), key=lambda members: -sum(0.5 if o.joined else 1.0 for o in members))
    candidates = [Candidate(sql=members[0].answer_sql, votes=len(members)) for members in ranked]
    return (ranked[0][0] if ranked else None), candidates


def agreement_key(outcome: CandidateOutcome) -> str:
    if outcome.result is not None:
        # Same rows in any order agree: candidates differ in ORDER BY more often than in meaning.
        rows = sorted(json.dumps(row, sort_keys=True, default=str) for row in outcome.result.rows)
        return "result:" + json.dumps(rows)
    return "sql:" + " ".join(outcome.answer_sql.lower().split())
