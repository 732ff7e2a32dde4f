"""A training record rendered as the served model will see it: the prompt from serving's own code, the gold SQL
as the completion.

The record becomes the `SqlGenerateRequest` serving would receive, and goes through the same steps: the
ingress's `SchemaResolver`, `sql_task`, `plan_task` (template, dialects, history and schema fitted to the
context) and `render_prompt`. Nothing here formats a prompt itself, so a fine-tuned model is served with
exactly the prompt it learned. The output is trl's prompt-completion form, so the loss falls on the SQL only.
"""

from __future__ import annotations

from deployments.protocol.sql import SqlGenerateRequest
from deployments.schema_resolver import SchemaResolver
from deployments.serving.sql_generation import sql_task
from text2sql.dialects import transpiled
from text2sql.examples import ExamplePair
from text2sql.pipeline.generate import Plan, plan_task, render_prompt
from text2sql.pipeline.settings import ModelProfile, PipelineSettings
from text2sql.prompts import get_template
from text2sql.validation import validate_sql
from training.records import TrainingRecord


class RenderError(ValueError):
    """The record cannot become a sound example for this model (the answer would leak, or not fit the prompt)."""


def template_id(model: ModelProfile) -> str:
    """The prompt template the examples are rendered with: an adapter must be served with the same one."""
    return get_template(model.prompt_template).template_id


def serving_request(record: TrainingRecord) -> SqlGenerateRequest:
    """The request serving would receive for this record's question."""
    return SqlGenerateRequest(
        question=record.question,
        schema=record.schema_,
        database=record.database,
        evidence=record.evidence,
        history=record.history,
        dialect=record.dialect,
    )


def render_example(
    record: TrainingRecord,
    *,
    model: ModelProfile,
    resolver: SchemaResolver,
    settings: PipelineSettings,
    context_length: int,
) -> dict:
    """`{"prompt": messages, "completion": [assistant message]}` for chat templates, `{"prompt": str,
    "completion": str}` for raw-prompt ones. Raises RenderError when the example would teach the wrong thing."""
    request = serving_request(record)
    task = sql_task(request)
    context = resolver.resolve(request)
    _refuse_leaked_answer(record, context.examples)
    plan = plan_task(task, context, model=model, settings=settings, context_length=context_length)
    rendered = render_prompt(task, plan)
    # The model writes its family's dialect (serving transpiles its answer to the requested one), so it learns that.
    try:
        completion = transpiled(record.sql.strip(), context.dialect, plan.dialects.generation)
    except ValueError as e:
        raise RenderError(f"the gold SQL cannot be written in {plan.dialects.generation}: {e}") from e
    _check_against_prompt(completion, plan.dialects.generation, plan, context_length=context_length)
    if rendered.messages is not None:
        return {
            "prompt": [message.model_dump() for message in rendered.messages],
            "completion": [{"role": "assistant", "content": completion}],
        }
    return {"prompt": rendered.prompt, "completion": completion}


def _refuse_leaked_answer(record: TrainingRecord, examples: list[ExamplePair]) -> None:
    # The store skips the very question, not a paraphrase of it with the same SQL (Spider has many): a model
    # trained to copy an example's answer would copy wrong ones when served.
    gold = _comparable(record.sql)
    for example in examples:
        if _comparable(example.sql) == gold or _comparable(example.question) == _comparable(record.question):
            raise RenderError(
                f"the example store holds this record's answer ({example.question!r}): it would be in the prompt"
            )


def _comparable(text: str) -> str:
    return " ".join(text.lower().rstrip("; \n").split())


def _check_against_prompt(sql: str, dialect: str, plan: Plan, *, context_length: int) -> None:
    # Serving checks the model's answer against the schema the prompt shows, in the dialect the model writes.
    # A gold answer that fails there would teach the model to name tables it was not shown (the schema was cut
    # to fit the context) or SQL that only reads right in the record's own dialect.
    schema = plan.prompt_schema.schema
    if schema is None:
        return
    result = validate_sql(sql, dialect=dialect, schema=schema)
    if not result.valid:
        problems = "; ".join(issue.message for issue in result.errors)
        raise RenderError(
            f"the gold SQL as the model writes it ({dialect}) fails against the schema the prompt shows "
            f"(context_length={context_length}): {problems}"
        )
