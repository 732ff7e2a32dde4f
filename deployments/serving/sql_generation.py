"""`POST /v1/sql/generate` on one model: the HTTP request becomes the core pipeline's task (text2sql.pipeline)."""

from __future__ import annotations

from collections.abc import Callable

from deployments.config import ModelConfig, PipelineSettings
from deployments.protocol.sql import SqlGenerateRequest, SqlGenerateResponse
from text2sql.pipeline import generate as _pipeline
from text2sql.pipeline.engine import Engine
from text2sql.pipeline.inputs import SchemaContext, SqlTask
from text2sql.pipeline.rewrites import Rewrites
from text2sql.pipeline.settings import ModelProfile
from text2sql.schema import DatabaseSchema


def sql_task(request: SqlGenerateRequest) -> SqlTask:
    return SqlTask(
        question=request.question,
        evidence=request.evidence,
        history=request.history,
        validate_sql=request.validate_sql,
        max_repairs=request.max_repairs,
        **{switch: getattr(request, switch) for switch in Rewrites.model_fields},
        n=request.n,
        greedy_candidate=request.greedy_candidate,
        followup_edit=request.followup_edit,
        fallback_candidates=request.fallback_candidates,
        language_hint=request.language_hint,
        translate_question=request.translate_question,
        gloss_chinese=request.gloss_chinese,
        constrained=request.constrained,
        max_tokens=request.max_tokens,
        temperature=request.temperature,
    )


def model_profile(config: ModelConfig, *, adapter: str | None = None) -> ModelProfile:
    return ModelProfile(
        name=config.name,
        prompt_template=config.prompt_template,
        generation=config.generation,
        constrained_decoding=config.constrained_decoding,
        adapter=adapter,
    )


async def generate_sql(
    engine: Engine,
    config: ModelConfig,
    request: SqlGenerateRequest,
    context: SchemaContext,
    *,
    pipeline: PipelineSettings,
    queue_ms: float = 0.0,
    grammar_for: Callable[[DatabaseSchema, str], str] | None = None,
    adapter: str | None = None,
) -> SqlGenerateResponse:
    answer = await _pipeline.generate_sql(
        engine,
        sql_task(request),
        context,
        model=model_profile(config, adapter=adapter),
        settings=pipeline,
        context_length=engine.capabilities.context_length,
        grammar_for=grammar_for,
        queue_ms=queue_ms,
    )
    return SqlGenerateResponse.model_construct(**dict(answer))
