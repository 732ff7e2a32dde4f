"""Question -> checked SQL over any engine, stage by stage.

    plan     the template, the dialects, the history that fits, the schema that fits beside it, sampling
    generate the model writes (n candidates per round) in its family's dialect, else the database's
    check    extract, validate, transpile, execute read-only within the byte budget (`candidate.py`)
    repair   on failure, re-prompt with the SQL, the error and the real names, up to max_repairs rounds
    vote     with n > 1, the answer most candidates agree on (`vote.py`)
    answer   the SQL, the verdict, the attempts, rows when run, usage and timings
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from text2sql.dialects import generation_dialect
from text2sql.extraction import extract_sql
from text2sql.glossary import gloss_question
from text2sql.language import is_chinese
from text2sql.pipeline.answer import Attempt, SqlAnswer, Timings, Usage
from text2sql.pipeline.budget import ByteBudget
from text2sql.pipeline.candidate import CandidateOutcome, Dialects, check_candidate
from text2sql.pipeline.context import (
    PromptSchema,
    cap_history,
    fit_schema,
    history_in_dialect,
    identifier_listing,
    schema_budget_chars,
)
from text2sql.pipeline.engine import Engine, GenerationRequest, SamplingParams
from text2sql.pipeline.inputs import SchemaContext, SqlTask
from text2sql.pipeline.rewrites import Asked, Rewrites
from text2sql.pipeline.sampling import merge_sampling
from text2sql.pipeline.settings import ModelProfile, PipelineSettings
from text2sql.pipeline.translation import translate_question
from text2sql.pipeline.vote import vote
from text2sql.prompts import HistoryTurn, PromptInput, PromptTemplate, RepairContext, get_template
from text2sql.schema import DatabaseSchema

GrammarFor = Callable[[DatabaseSchema, str], str]


@dataclass
class Plan:
    template: PromptTemplate
    dialects: Dialects
    history: list[HistoryTurn]
    history_dropped: int
    prompt_schema: PromptSchema
    sampling: SamplingParams
    n: int
    max_repairs: int
    rewrites: Rewrites
    notes: list[str]
    adapter: str | None = None
    fallback_candidates: int = 0
    greedy_candidate: bool = False  # n > 1: the first candidate of each round is decoded greedily
    examples: list = field(default_factory=list)
    value_matches: list[str] = field(default_factory=list)
    glosses: list[str] = field(default_factory=list)
    chinese_question: bool = False
    followup_edit: bool = False


@dataclass
class _Totals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generate_ms: float = 0.0
    execute_ms: float = 0.0
    last_reply: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    voted: bool = False  # fallback candidates were sampled: the answer is the vote over all of round 0


async def generate_sql(
    engine: Engine,
    task: SqlTask,
    context: SchemaContext,
    *,
    model: ModelProfile,
    settings: PipelineSettings,
    context_length: int,
    grammar_for: GrammarFor | None = None,
    queue_ms: float = 0.0,
) -> SqlAnswer:
    totals = _Totals()
    task, translated_note = await _in_english(engine, task, model=model, settings=settings, totals=totals)
    plan = plan_task(
        task, context, model=model, settings=settings, context_length=context_length, grammar_for=grammar_for
    )
    if translated_note:
        plan.notes.append(translated_note)
    outcomes = await _rounds(engine, task, context, plan, settings, totals)
    return _answer(task, context, plan, outcomes, totals, model=model, queue_ms=queue_ms)


async def _in_english(
    engine: Engine, task: SqlTask, *, model: ModelProfile, settings: PipelineSettings, totals: _Totals
) -> tuple[SqlTask, str | None]:
    """The task with its Chinese question put into English, when translation is on (translation.py)."""
    wanted = task.translate_question if task.translate_question is not None else settings.translate_questions
    if not wanted or not is_chinese(task.question):
        return task, None
    started = time.perf_counter()
    translation = await translate_question(engine, task.question, seed=model.generation.seed)
    totals.generate_ms += (time.perf_counter() - started) * 1000
    if translation is None:
        return task, "the question could not be put into English; it was asked as written"
    totals.prompt_tokens += translation.prompt_tokens
    totals.completion_tokens += translation.completion_tokens
    return task.model_copy(update={"question": translation.english}), f"asked in English as: {translation.english}"


def plan_task(
    task: SqlTask,
    context: SchemaContext,
    *,
    model: ModelProfile,
    settings: PipelineSettings,
    context_length: int,
    grammar_for: GrammarFor | None = None,
) -> Plan:
    """Everything decided before the model is asked; training renders its examples from the same plan."""
    template = get_template(model.prompt_template)
    writes = generation_dialect(native=template.native_dialect, database=context.database_dialect, requested=context.dialect)
    dialects = Dialects(
        generation=writes, answer=context.dialect, execution=context.database_dialect or context.dialect
    )
    capped, dropped = cap_history(
        task.history, max_turns=settings.max_history_turns, max_tokens=settings.max_history_tokens
    )
    history = history_in_dialect(capped, source=context.dialect, target=writes)
    max_tokens = task.max_tokens or model.generation.max_tokens
    # A follow-up ("what about France?") needs the tables of the turns it follows.
    topic = " ".join([*(t.question for t in history), task.question])
    budget_chars = schema_budget_chars(
        context_length=context_length, max_tokens=max_tokens, reserve_tokens=settings.context_reserve_tokens, history=history
    )
    prompt_schema = fit_schema(
        context.schema_, topic, raw_text=context.raw_text, budget_chars=budget_chars,
        schema_format=template.schema_format, database_dialect=context.database_dialect,
    )
    n = min(task.n, settings.max_candidates)
    temperature = task.temperature if task.temperature is not None else (
        settings.candidate_temperature if n > 1 else None
    )
    sampling = merge_sampling(
        model.generation, max_tokens=task.max_tokens, temperature=temperature, stop=list(template.default_stop)
    )
    constrained = task.constrained if task.constrained is not None else model.constrained_decoding
    if constrained and prompt_schema.schema is not None and grammar_for is not None:
        sampling = sampling.model_copy(update={"grammar": grammar_for(prompt_schema.schema, writes)})
    max_repairs = (task.max_repairs if task.max_repairs is not None else settings.max_repairs) if task.validate_sql else 0
    return Plan(
        template=template, dialects=dialects, history=history, history_dropped=dropped, prompt_schema=prompt_schema,
        sampling=sampling, n=n, max_repairs=max_repairs,
        rewrites=Rewrites.resolved(task, settings),
        notes=_notes(task, context, settings, dropped=dropped, prompt_schema=prompt_schema),
        adapter=model.adapter,
        examples=context.examples,
        value_matches=context.value_matches,
        glosses=_glosses(task, context, settings),
        followup_edit=bool(history) and (
            task.followup_edit if task.followup_edit is not None else settings.followup_edit
        ),
        chinese_question=(
            task.language_hint if task.language_hint is not None else settings.language_hint
        ) and is_chinese(task.question),
        # A sampled vote can outvote a right greedy answer with agreeing wrong samples; the greedy one anchors it.
        greedy_candidate=n > 1 and task.temperature is None and (
            task.greedy_candidate if task.greedy_candidate is not None else settings.greedy_candidate
        ),
        fallback_candidates=(
            task.fallback_candidates if task.fallback_candidates is not None else settings.fallback_candidates
        ) if n == 1 else 0,
    )


def _glosses(task: SqlTask, context: SchemaContext, settings: PipelineSettings) -> list[str]:
    """The schema names a Chinese question's words mean, when glossing is on (`text2sql.glossary`)."""
    on = task.gloss_chinese if task.gloss_chinese is not None else settings.gloss_chinese
    if not on or context.schema_ is None or not is_chinese(task.question):
        return []
    return [gloss.render() for gloss in gloss_question(task.question, context.schema_)]


def render_prompt(task: SqlTask, plan: Plan, *, repair: RepairContext | None = None):
    return plan.template.render(
        PromptInput(
            question=task.question,
            schema_text=plan.prompt_schema.text,
            dialect=plan.dialects.generation,
            evidence=task.evidence,
            repair=repair,
            history=plan.history,
            examples=plan.examples,
            value_matches=plan.value_matches,
            glosses=plan.glosses,
            chinese_question=plan.chinese_question,
            followup_edit=plan.followup_edit,
        )
    )


async def _rounds(
    engine: Engine, task: SqlTask, context: SchemaContext, plan: Plan, settings: PipelineSettings, totals: _Totals
) -> list[CandidateOutcome]:
    budget = ByteBudget(context.target.max_bytes) if context.target is not None else None
    sampling = plan.sampling
    repair: RepairContext | None = None
    outcomes: list[CandidateOutcome] = []
    for round_index in range(1 + plan.max_repairs):
        rendered = render_prompt(task, plan, repair=repair)
        outcomes = []
        def request(with_sampling: SamplingParams, rendered=rendered) -> GenerationRequest:
            return GenerationRequest(
                messages=rendered.messages, prompt=rendered.prompt, sampling=with_sampling, adapter=plan.adapter
            )

        outcomes = [
            await _attempt(engine, request(_candidate_sampling(sampling, plan, index)), task, context, plan,
                           round_index, budget, totals)
            for index in range(plan.n)
        ]
        if round_index == 0 and plan.fallback_candidates and not _has_rows(outcomes[0]):
            # The greedy answer failed or found nothing: more samples of the same (cached) prompt, then a vote.
            spread = request(sampling.model_copy(update={"temperature": settings.candidate_temperature}))
            outcomes += [await _attempt(engine, spread, task, context, plan, round_index, budget, totals)
                         for _ in range(plan.fallback_candidates)]
            totals.voted = True
        if any(o.ok for o in outcomes):
            break
        if sampling.temperature == 0:
            # Greedy decoding would write the same SQL again, however clear the error message.
            sampling = sampling.model_copy(update={"temperature": settings.repair_temperature})
        failed = outcomes[0]
        repair = RepairContext(
            sql=failed.extracted or totals.last_reply[:500],
            error=failed.error or "unknown error",
            valid_identifiers=identifier_listing(plan.prompt_schema.schema),
        )
    return outcomes


def _candidate_sampling(sampling: SamplingParams, plan: Plan, index: int) -> SamplingParams:
    if index == 0 and plan.greedy_candidate:
        return sampling.model_copy(update={"temperature": 0.0})
    return sampling


async def _attempt(
    engine: Engine,
    request: GenerationRequest,
    task: SqlTask,
    context: SchemaContext,
    plan: Plan,
    round_index: int,
    budget: ByteBudget | None,
    totals: _Totals,
) -> CandidateOutcome:
    """One generation and its check, recorded in the answer's attempts."""
    started = time.perf_counter()
    output = await engine.generate(request)
    totals.generate_ms += (time.perf_counter() - started) * 1000
    totals.prompt_tokens += output.prompt_tokens
    totals.completion_tokens += output.completion_tokens
    totals.last_reply = output.text
    if output.finish_reason == "length" and not output.text.rstrip().endswith((";", "```")):
        # Cut off mid-query: neither validated nor run, just retried.
        return _recorded(totals, CandidateOutcome(round=round_index, extracted=extract_sql(output.text)).fail(
            "extract", f"the model stopped at max_tokens ({request.sampling.max_tokens}); the SQL may be cut short"
        ))
    # Validation and execution block: keep the event loop free for other requests and health checks.
    outcome = await asyncio.to_thread(
        check_candidate,
        output.text,
        dialects=plan.dialects,
        schema=plan.prompt_schema.schema,
        validate=task.validate_sql,
        target=context.target,
        budget=budget,
        round_index=round_index,
        rewrites=plan.rewrites,
        asked=Asked(question=task.question, previous_sql=plan.history[-1].sql if plan.history else None),
    )
    totals.execute_ms += outcome.execute_ms
    return _recorded(totals, outcome)


def _recorded(totals: _Totals, outcome: CandidateOutcome) -> CandidateOutcome:
    totals.attempts.append(
        Attempt(  # type: ignore[arg-type]
            round=outcome.round, sql=outcome.extracted, stage=outcome.stage, error=outcome.error,
            code=outcome.code, fixes=outcome.fixes,
        )
    )
    return outcome


def _answer(
    task: SqlTask,
    context: SchemaContext,
    plan: Plan,
    outcomes: list[CandidateOutcome],
    totals: _Totals,
    *,
    model: ModelProfile,
    queue_ms: float,
) -> SqlAnswer:
    if totals.voted:
        # Answers with rows outvote empty ones; an empty answer stands only when nothing found rows.
        with_rows = [o for o in outcomes if _has_rows(o)]
        chosen, candidates = vote(with_rows or outcomes, n=len(outcomes))
    else:
        chosen, candidates = vote(outcomes, n=plan.n)
    final = chosen or outcomes[-1]
    result = final.result
    return SqlAnswer(
        sql=final.answer_sql or final.extracted,
        success=chosen is not None,
        error=None if chosen is not None else final.error,
        model=model.name,
        dialect=context.dialect,
        validated=final.validated,
        validation_error=None if final.validated else _validation_note(final, task, context),
        database=context.database,
        tables_used=plan.prompt_schema.tables_used,
        columns=result.columns if result else None,
        rows=result.rows if result else None,
        row_count=result.row_count if result else None,
        truncated=result.truncated if result else None,
        attempts=totals.attempts,
        candidates=candidates,
        history_used=len(plan.history),
        examples_used=[e.question for e in plan.examples],
        value_matches=plan.value_matches,
        glosses=plan.glosses,
        history_dropped=plan.history_dropped,
        notes=plan.notes,
        raw_output=totals.last_reply,
        usage=Usage(
            prompt_tokens=totals.prompt_tokens,
            completion_tokens=totals.completion_tokens,
            total_tokens=totals.prompt_tokens + totals.completion_tokens,
        ),
        timings=Timings(
            queue_ms=queue_ms, schema_ms=context.schema_ms, generate_ms=totals.generate_ms, execute_ms=totals.execute_ms
        ),
    )


def _has_rows(outcome: CandidateOutcome) -> bool:
    """Ran and found something. Without a database to run on, passing the check is all there is to have."""
    if not outcome.ok:
        return False
    return outcome.result is None or bool(outcome.result.rows)


def _notes(
    task: SqlTask, context: SchemaContext, settings: PipelineSettings, *, dropped: int, prompt_schema: PromptSchema
) -> list[str]:
    notes = []
    if dropped:
        notes.append(
            f"left out the {dropped} oldest of {len(task.history)} history turns to fit the limits "
            f"({settings.max_history_turns} turns, about {settings.max_history_tokens} tokens)"
        )
    all_tables = len(context.schema_.tables) if context.schema_ else 0
    if len(prompt_schema.tables_used or []) < all_tables:
        notes.append(
            f"the schema was cut to {len(prompt_schema.tables_used or [])} tables relevant to the question to fit the context"
        )
    return notes


def _validation_note(outcome: CandidateOutcome, task: SqlTask, context: SchemaContext) -> str:
    if not task.validate_sql:
        return "validation was switched off by the request"
    if outcome.stage == "validate":
        return outcome.error or "validation failed"
    if context.schema_ is None:
        return "no parseable schema was given, so tables and columns could not be checked"
    return f"the SQL failed at the {outcome.stage} step"
