"""Text-to-SQL metrics through Ray's own metrics (`ray.util.metrics`), recorded where the work happens: the
ingress counts requests and their end-to-end latency, each model replica its queue time, time to first token,
tokens and what became of the SQL. Ray's metrics agent on every node exports them beside Serve's own on the
node's Prometheus endpoint (names prefixed `ray_`), so one scrape config sees every replica of every model.

The names and tags are listed in k8s/monitoring/metrics.md, which the Grafana dashboard follows.
"""

from __future__ import annotations

from typing import Any

from text2sql.pipeline.answer import SqlAnswer
from text2sql.pipeline.verdict import is_unsafe

_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128]
_ROWS = [1, 2, 5, 10, 50, 100, 500, 1000, 10000]
_TAGS = ("model", "adapter")
BASE = "base"  # the adapter tag of requests for the base model itself


def _metrics():
    from ray.util import metrics

    return metrics


class IngressTelemetry:
    """Requests by model, adapter and HTTP status, and their latency from request in to response out."""

    def __init__(self) -> None:
        metrics = _metrics()
        self._requests = metrics.Counter(
            "text2sql_requests", "Requests by served model, adapter and HTTP status.", tag_keys=(*_TAGS, "status")
        )
        self._latency = metrics.Histogram(
            "text2sql_request_latency_seconds", "End-to-end latency at the ingress.", boundaries=_SECONDS, tag_keys=_TAGS
        )

    def record_request(self, *, model: str, adapter: str | None, status: int, seconds: float) -> None:
        tags = {"model": model, "adapter": adapter or BASE}
        self._requests.inc(1, tags={**tags, "status": str(status)})
        self._latency.observe(seconds, tags=tags)


class ReplicaTelemetry:
    """What one model replica saw: queue time, time to first token, tokens, SQL outcomes and rows returned."""

    def __init__(self, model: str) -> None:
        metrics = _metrics()
        self._model = model
        self._queue = metrics.Histogram(
            "text2sql_queue_time_seconds", "From the ingress sending a request until the model replica took it.",
            boundaries=_SECONDS, tag_keys=_TAGS,
        )
        self._first_token = metrics.Histogram(
            "text2sql_time_to_first_token_seconds", "From a streamed request's arrival until its first token.",
            boundaries=_SECONDS, tag_keys=_TAGS,
        )
        self._prompt_tokens = metrics.Counter("text2sql_prompt_tokens", "Prompt tokens read.", tag_keys=_TAGS)
        self._completion_tokens = metrics.Counter("text2sql_completion_tokens", "Tokens generated.", tag_keys=_TAGS)
        self._outcomes = metrics.Counter(
            "text2sql_sql_outcomes",
            "What became of generated SQL: parse_failure, validation_rejected, unsafe_refused (with the "
            "validation code), execution_error, execution_timeout, repair_attempted, repair_succeeded, vote.",
            tag_keys=(*_TAGS, "outcome", "code"),
        )
        self._rows = metrics.Histogram(
            "text2sql_rows_returned", "Rows an executed answer returned.", boundaries=_ROWS, tag_keys=_TAGS
        )

    def _tags(self, adapter: str | None) -> dict[str, str]:
        return {"model": self._model, "adapter": adapter or BASE}

    def record_queue(self, adapter: str | None, seconds: float) -> None:
        self._queue.observe(max(seconds, 0.0), tags=self._tags(adapter))

    def record_first_token(self, adapter: str | None, seconds: float) -> None:
        self._first_token.observe(seconds, tags=self._tags(adapter))

    def record_tokens(self, adapter: str | None, *, prompt: int, completion: int) -> None:
        tags = self._tags(adapter)
        if prompt:
            self._prompt_tokens.inc(prompt, tags=tags)
        if completion:
            self._completion_tokens.inc(completion, tags=tags)

    def record_sql(self, adapter: str | None, answer: SqlAnswer) -> None:
        tags = self._tags(adapter)
        for outcome, code in sql_outcomes(answer):
            self._outcomes.inc(1, tags={**tags, "outcome": outcome, "code": code or ""})
        self.record_tokens(adapter, prompt=answer.usage.prompt_tokens, completion=answer.usage.completion_tokens)
        if answer.row_count is not None:
            self._rows.observe(answer.row_count, tags=tags)


def sql_outcomes(answer: SqlAnswer) -> list[tuple[str, str | None]]:
    """Each counted event of one answer, as (outcome, validation or execution code)."""
    found: list[tuple[str, str | None]] = []
    for attempt in answer.attempts:
        if attempt.round > 0:
            found.append(("repair_attempted", None))
        if attempt.stage == "extract":
            found.append(("parse_failure", attempt.code))
        elif attempt.stage in ("validate", "transpile"):
            found.append(("unsafe_refused" if is_unsafe(attempt.code) else "validation_rejected", attempt.code))
        elif attempt.stage == "execute":
            found.append(("execution_timeout" if attempt.code == "timeout" else "execution_error", attempt.code))
    last = answer.attempts[-1] if answer.attempts else None
    if answer.success and last is not None and last.round > 0 and last.stage == "ok":
        found.append(("repair_succeeded", None))
    if answer.candidates:
        found.append(("vote", None))
    return found


def tags_of(adapter: Any) -> str | None:
    """The adapter tag of a request: the adapter's model id, or None for the base model."""
    return getattr(adapter, "model_id", None)
