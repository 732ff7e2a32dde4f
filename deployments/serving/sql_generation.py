"""`POST /v1/sql/generate` on one model: the HTTP request becomes the core pipeline's task (text2sql.pipeline)."""

from __future__ import annotations

from collections.abc import Callable

from deployments.config import ModelConfig, PipelineSettings
from deployments.databases import DatabaseConfig
from deployments.engines.base import Engine
from deployments.protocol.sql import SqlGenerateRequest, SqlGenerateResponse
from deployments.schema_resolver import ResolvedSchema
from text2sql.pipeline import generate as _pipeline
from text2sql.pipeline.inputs import ExecutionTarget, SchemaContext, SqlTask
from text2sql.pipeline.settings import ModelProfile
from text2sql.pipeline.settings import PipelineSettings as CorePipelineSettings
from text2sql.schema import DatabaseSchema


def sql_task(request: SqlGenerateRequest) -> SqlTask:
    return SqlTask(
        question=request.question,
        evidence=request.evidence,
        history=request.history,
        validate_sql=request.validate_sql,
        max_repairs=request.max_repairs,
        fix_identifiers=request.fix_identifiers,
        n=request.n,
        constrained=request.constrained,
        max_tokens=request.max_tokens,
        temperature=request.temperature,
    )


def model_profile(config: ModelConfig) -> ModelProfile:
    return ModelProfile(
        name=config.name,
        prompt_template=config.prompt_template,
        generation=config.generation.model_dump(),
        constrained_decoding=config.constrained_decoding,
    )


def schema_context(
    request: SqlGenerateRequest, resolved: ResolvedSchema, database: DatabaseConfig | None
) -> SchemaContext:
    target = None
    if request.execute and database is not None:
        target = ExecutionTarget(
            url=database.resolve_url(),
            dialect=database.dialect(),
            max_rows=min(request.max_rows or database.max_rows, database.max_rows),
            timeout_s=database.timeout_s,
        )
    return SchemaContext(
        schema_=resolved.schema_,
        raw_text=resolved.raw_text,
        dialect=resolved.dialect,
        database=request.database,
        database_dialect=resolved.database_dialect,
        target=target,
        schema_ms=resolved.schema_ms,
    )


async def generate_sql(
    engine: Engine,
    config: ModelConfig,
    request: SqlGenerateRequest,
    resolved: ResolvedSchema,
    *,
    pipeline: PipelineSettings,
    database: DatabaseConfig | None = None,
    queue_ms: float = 0.0,
    grammar_for: Callable[[DatabaseSchema, str], str] | None = None,
) -> SqlGenerateResponse:
    answer = await _pipeline.generate_sql(
        engine,
        sql_task(request),
        schema_context(request, resolved, database),
        model=model_profile(config),
        settings=CorePipelineSettings.model_validate(pipeline.model_dump()),
        context_length=config.engine.n_ctx,
        grammar_for=grammar_for,
        queue_ms=queue_ms,
    )
    return SqlGenerateResponse.model_construct(**dict(answer))
