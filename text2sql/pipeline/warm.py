"""Prefill a database's prompt prefix before any user asks, so the first question costs what later ones do.

An engine with a prefix cache (llama.cpp keeps the tokens it last evaluated; vLLM caches shared prefixes)
then only evaluates the question itself. The prompt is rendered exactly as a question on that database would be,
up to the question: the system turn and the schema come first in every template.
"""

from __future__ import annotations

import time

from text2sql.pipeline.engine import Engine, GenerationRequest
from text2sql.pipeline.generate import plan_task, render_prompt
from text2sql.pipeline.inputs import SchemaContext, SqlTask
from text2sql.pipeline.settings import ModelProfile, PipelineSettings

# Any short question: what matters is the prefix before it.
WARM_UP_QUESTION = "How many rows are there?"


async def warm_prefix(
    engine: Engine, context: SchemaContext, *, model: ModelProfile, settings: PipelineSettings, context_length: int
) -> float:
    """Evaluate the prompt a question on `context` starts with (one token generated); the milliseconds it took."""
    task = SqlTask(question=WARM_UP_QUESTION)
    plan = plan_task(task, context, model=model, settings=settings, context_length=context_length)
    rendered = render_prompt(task, plan)
    sampling = plan.sampling.model_copy(update={"max_tokens": 1, "temperature": 0.0, "grammar": None})
    started = time.perf_counter()
    await engine.generate(
        GenerationRequest(messages=rendered.messages, prompt=rendered.prompt, sampling=sampling, adapter=model.adapter)
    )
    return (time.perf_counter() - started) * 1000
