"""`POST /v1/sql/generate` on a table-QA model (SPACE-T): the question over the database's tables.

    tables    the resolved schema, with each table's rows from the database (`table_exports.py`)
    history   the last turn's SQL read back into SPACE-T's structured query: it carries the conversation's
              state (SPACE-T's `history_sql`), and it is the SQL this path answered that turn with
    answer    the engine's structured query over one table
    SQL       rendered from it in the database's dialect, then the same check as every model's SQL
              (validation, transpiling, read-only execution when asked)

The answer carries SPACE-T's structured query (`structured_query`, the form its `history_sql` takes) and its
own SQL text (`raw_output`). Sampling switches (n, temperature, constrained, max_tokens) do not apply and are ignored.
"""

from __future__ import annotations

import asyncio
import time

from deployments.config import ModelConfig
from deployments.errors import TableQaUnsupported
from deployments.protocol.sql import SqlGenerateRequest, SqlGenerateResponse
from deployments.serving.table_exports import TableExports
from text2sql.pipeline.answer import Attempt, Timings, Usage
from text2sql.pipeline.candidate import CandidateOutcome, Dialects, check_candidate
from text2sql.pipeline.inputs import SchemaContext
from text2sql.pipeline.rewrites import Rewrites
from text2sql.prompts import HistoryTurn
from text2sql.table_qa import (
    NotATableQuery,
    QaTables,
    StructuredQuery,
    TableQaEngine,
    query_from_sql,
    render_sql,
)

# One per replica process: a database's rows are read once for every request until the engine's refresh time.
_EXPORTS = TableExports()


async def generate_sql(
    engine: TableQaEngine,
    config: ModelConfig,
    request: SqlGenerateRequest,
    context: SchemaContext,
    *,
    queue_ms: float = 0.0,
    exports: TableExports = _EXPORTS,
) -> SqlGenerateResponse:
    if context.schema_ is None:
        raise TableQaUnsupported(
            f"model {config.name!r} (SPACE-T) answers over tables it can read: name a configured 'database', "
            "or give a 'schema' as CREATE TABLE statements or JSON",
            param="database",
        )
    export = await asyncio.to_thread(exports.export, context, engine.export_policy)
    dialects = _dialects(context)
    previous = previous_query(request.history, export.tables, dialects.answer)
    started = time.perf_counter()
    answer = await engine.answer(request.question, export.tables, previous)
    generate_ms = (time.perf_counter() - started) * 1000
    table = export.tables.table(answer.query.table)
    if table is None:  # SPACE-T picks among the tables it was given
        raise RuntimeError(f"SPACE-T answered over table {answer.query.table!r}, which it was not given")
    sql = render_sql(answer.query, table, dialects.generation)
    # Validation and execution block: keep the event loop free for other requests and health checks.
    outcome = await asyncio.to_thread(
        check_candidate,
        sql,
        dialects=dialects,
        schema=context.schema_,
        validate=request.validate_sql,
        target=context.target,
        rewrites=Rewrites(fix_identifiers=False),  # the SQL is built from the schema's own names
    )
    result = outcome.result
    response = SqlGenerateResponse(
        sql=outcome.answer_sql or outcome.extracted,
        success=outcome.ok,
        error=outcome.error,
        model=config.name,
        dialect=context.dialect,
        validated=outcome.validated,
        validation_error=None if outcome.validated else _validation_note(outcome, request),
        database=context.database,
        tables_used=[table.name],
        columns=result.columns if result else None,
        rows=result.rows if result else None,
        row_count=result.row_count if result else None,
        truncated=result.truncated if result else None,
        attempts=[
            Attempt(round=0, sql=sql, stage=outcome.stage, error=outcome.error, code=outcome.code)  # type: ignore[arg-type]
        ],
        history_used=1 if answer.history_used else 0,
        history_dropped=max(0, len(request.history) - 1),
        notes=[*export.notes, *_notes(request)],
        raw_output=answer.model_sql,
        usage=Usage(),
        timings=Timings(
            queue_ms=queue_ms, schema_ms=context.schema_ms, generate_ms=generate_ms, execute_ms=outcome.execute_ms
        ),
        structured_query=answer.query.to_spacet(),
    )
    return response


async def warm_up(engine: TableQaEngine, context: SchemaContext, *, exports: TableExports = _EXPORTS) -> float:
    """Read a database's tables and have the engine index them before the first question; the milliseconds."""
    started = time.perf_counter()
    if context.schema_ is not None:
        export = await asyncio.to_thread(exports.export, context, engine.export_policy)
        await engine.prepare(export.tables)
    return (time.perf_counter() - started) * 1000


def previous_query(history: list[HistoryTurn], tables: QaTables, dialect: str) -> StructuredQuery | None:
    """SPACE-T's `history_sql`: the last turn's SQL as a structured query. Only the last turn counts, as SPACE-T
    folds every earlier turn into the query it answers with."""
    if not history:
        return None
    try:
        return query_from_sql(history[-1].sql, tables, dialect)
    except NotATableQuery as e:
        raise TableQaUnsupported(
            f"history[{len(history) - 1}].sql cannot be followed up by SPACE-T: {e}. It continues from the "
            "single-table SELECT of its own previous answer; start a new conversation (no history) otherwise",
            param="history",
        ) from e


def _dialects(context: SchemaContext) -> Dialects:
    # Written straight in the database's dialect, so what runs is what was built; the answer's is transpiled.
    execution = context.database_dialect or context.dialect
    return Dialects(generation=execution, answer=context.dialect, execution=execution)


def _notes(request: SqlGenerateRequest) -> list[str]:
    notes = []
    if len(request.history) > 1:
        notes.append(
            f"SPACE-T followed up on the last of the {len(request.history)} history turns: its query carries the "
            "conversation's state"
        )
    if request.evidence:
        notes.append("SPACE-T takes no evidence: it was left out")
    if request.n > 1:
        notes.append("SPACE-T answers one query per question: n was ignored")
    if request.examples:
        notes.append("SPACE-T takes no examples: they were left out")
    return notes


def _validation_note(outcome: CandidateOutcome, request: SqlGenerateRequest) -> str:
    if not request.validate_sql:
        return "validation was switched off by the request"
    return outcome.error or f"the SQL failed at the {outcome.stage} step"
