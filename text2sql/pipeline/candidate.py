"""The check every model reply goes through before it is answered or run: the server's and the security suite's.

extract -> validate (sqlglot: one read-only statement, allowed functions and schemas, real identifiers)
-> transpile to the answer's and the database's dialects -> re-check what will run, in the database's dialect
-> execute read-only within the request's byte budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from text2sql.dialects import transpiled
from text2sql.execution import ExecutionError, QueryResult, QueryTimeout, execute_read_only
from text2sql.extraction import extract_sql
from text2sql.pipeline.budget import ByteBudget
from text2sql.pipeline.conflicting_filters import split_conflicting_filters
from text2sql.pipeline.dialect_slips import rewrite_foreign_functions
from text2sql.pipeline.family_names import drop_unasked_family_names
from text2sql.pipeline.fixes import fix_identifiers as fix_identifiers_in
from text2sql.pipeline.inputs import ExecutionTarget
from text2sql.pipeline.join_bridges import bridge_joins as bridge_joins_in
from text2sql.pipeline.key_names import name_unasked_keys
from text2sql.pipeline.literal_columns import relink_literals as relink_literals_in
from text2sql.pipeline.negated_joins import negate_across_joins
from text2sql.pipeline.rewrites import Asked, Rewrites
from text2sql.pipeline.shared_columns import qualify_shared_columns
from text2sql.pipeline.spelling import respell_identifiers
from text2sql.pipeline.unasked_limits import drop_unasked_limit
from text2sql.pipeline.unused_joins import drop_unnamed_joins
from text2sql.pipeline.unused_joins import drop_unused_joins as drop_unused_joins_in
from text2sql.pipeline.value_probe import DatabaseProbe
from text2sql.pipeline.verdict import is_unsafe
from text2sql.schema import DatabaseSchema
from text2sql.validation import ValidationResult, validate_sql

# Only name slips (and another dialect's functions) are fixed without the model; anything else unsafe or
# unparseable goes back to it (or is refused).
_FIXABLE = frozenset({"unknown_column", "unknown_table"})


@dataclass(frozen=True)
class Dialects:
    generation: str  # what the model writes
    answer: str  # what the client asked for
    execution: str  # what the database speaks


@dataclass
class CandidateOutcome:
    round: int
    extracted: str  # as the model wrote it
    answer_sql: str = ""  # in the answer's dialect
    stage: str = "ok"
    error: str | None = None
    code: str | None = None
    validated: bool = False
    result: QueryResult | None = None
    execute_ms: float = 0.0
    fixes: list[str] = field(default_factory=list)  # identifier and dialect slips fixed without a model call
    joined: bool = False  # a join the model forgot was added (the vote counts such a candidate as half)

    @property
    def ok(self) -> bool:
        return self.error is None

    def fail(self, stage: str, error: str, code: str | None = None) -> CandidateOutcome:
        self.stage, self.error, self.code = stage, error, code
        return self


ALL_ON = Rewrites()
NOTHING_ASKED = Asked()


def check_candidate(
    reply: str,
    *,
    dialects: Dialects,
    schema: DatabaseSchema | None,
    validate: bool,
    target: ExecutionTarget | None = None,
    budget: ByteBudget | None = None,
    round_index: int = 0,
    rewrites: Rewrites = ALL_ON,
    asked: Asked = NOTHING_ASKED,
) -> CandidateOutcome:
    """Judge one reply; blocking (it may run a query), so async callers use a worker thread. `asked` is read by
    the rewrites that depend on the question's wording (drop_unnamed_joins, negate_across_joins, drop_unasked_limits,
    name_unasked_keys, drop_unasked_family_names)."""
    fix_identifiers = rewrites.fix_identifiers
    extracted = extract_sql(reply)
    outcome = CandidateOutcome(round=round_index, extracted=extracted)
    if not extracted:
        return outcome.fail("extract", "the model's reply contains no SQL query")
    if validate:
        validation = validate_sql(extracted, dialect=dialects.generation, schema=schema)
        if not validation.valid and fix_identifiers:
            validation = _with_rewritten_functions(validation, outcome, dialect=dialects.generation, schema=schema)
        if not validation.valid and fix_identifiers and schema is not None:
            validation = _with_fixed_identifiers(
                validation, outcome, dialect=dialects.generation, schema=schema, joins=rewrites.complete_joins
            )
        if not validation.valid:
            return outcome.fail("validate", issues_text(validation), validation.errors[0].code)
        if fix_identifiers and schema is not None:
            for rewrite, joined in _rewrites_of_valid_sql(rewrites, asked, target):
                validation = _with_rewrite(
                    validation, outcome, rewrite, dialect=dialects.generation, schema=schema, joined=joined
                )
        outcome.validated = schema is not None
        sql = validation.sql  # the statement as checked, comments stripped
        if schema is not None:
            sql = _spelled_for_the_database(sql, outcome, dialects=dialects, schema=schema)
    else:
        parsed = validate_sql(extracted, dialect=dialects.generation, schema=None)
        if parsed.errors and parsed.errors[0].code in ("parse_error", "multiple_statements", "empty"):
            return outcome.fail("validate", issues_text(parsed), parsed.errors[0].code)
        sql = extracted
    try:
        outcome.answer_sql = transpiled(sql, dialects.generation, dialects.answer)
        execution_sql = transpiled(sql, dialects.generation, dialects.execution)
    except ValueError as e:
        return outcome.fail("transpile", str(e))
    if validate and execution_sql != sql:
        # Transpiling writes new text (and may name other functions): what runs is checked in its own dialect.
        recheck = validate_sql(execution_sql, dialect=dialects.execution, schema=None)
        unsafe = [issue for issue in recheck.errors if is_unsafe(issue.code)]
        if unsafe:
            return outcome.fail("validate", f"as {dialects.execution}: {unsafe[0].message}", unsafe[0].code)
    if target is not None:
        _execute(outcome, execution_sql, target, budget or ByteBudget(target.max_bytes))
    return outcome


def _spelled_for_the_database(sql: str, outcome: CandidateOutcome, *, dialects: Dialects, schema: DatabaseSchema) -> str:
    """Names the validator accepted whatever their case, spelled so the database finds them (spelling.py)."""
    respelled = respell_identifiers(sql, dialect=dialects.generation, schema=schema, database_dialect=dialects.execution)
    if respelled is None:
        return sql
    checked = validate_sql(respelled[0], dialect=dialects.generation, schema=schema)
    if not checked.valid:
        return sql
    outcome.fixes += respelled[1]
    return checked.sql


def _with_rewritten_functions(
    validation: ValidationResult, outcome: CandidateOutcome, *, dialect: str, schema: DatabaseSchema | None
) -> ValidationResult:
    """Validation again after another dialect's functions are rewritten (CURDATE() for SQLite), when a function
    off the allow-list is the only unsafe thing; kept only if no such function is left."""
    codes = {issue.code for issue in validation.errors}
    if "forbidden_function" not in codes or any(is_unsafe(code) for code in codes - {"forbidden_function"}):
        return validation
    rewritten = rewrite_foreign_functions(validation.sql, dialect=dialect)
    if rewritten is None:
        return validation
    sql, notes = rewritten
    revalidated = validate_sql(sql, dialect=dialect, schema=schema)
    if any(is_unsafe(issue.code) for issue in revalidated.errors):
        return validation
    outcome.fixes += list(dict.fromkeys(notes))
    return revalidated


def _with_fixed_identifiers(
    validation: ValidationResult, outcome: CandidateOutcome, *, dialect: str, schema: DatabaseSchema, joins: bool
) -> ValidationResult:
    """Validation again after unambiguous identifier fixes, when names were all that was wrong."""
    if any(issue.code not in _FIXABLE for issue in validation.errors):
        return validation
    fixed = fix_identifiers_in(validation.sql, dialect=dialect, schema=schema, joins=joins)
    if fixed is None:
        return validation
    sql, fixes = fixed
    revalidated = validate_sql(sql, dialect=dialect, schema=schema)
    if revalidated.valid:
        outcome.fixes += [fix.describe() for fix in fixes]
        outcome.joined = any(fix.join for fix in fixes)
        return revalidated
    return validation


def _rewrites_of_valid_sql(
    rewrites: Rewrites, asked: Asked, target: ExecutionTarget | None
) -> list[tuple[Callable[..., tuple[str, list[str]] | None], bool]]:
    """The switched-on rewrites of a statement that validates, in the order they run, each with whether it adds a
    join (a bridged candidate counts half in a vote)."""
    steps: list[tuple[Callable[..., tuple[str, list[str]] | None], bool]] = [
        # No switch of its own: it only changes statements that every supported database refuses.
        (qualify_shared_columns, False),
    ]
    if rewrites.bridge_joins:
        steps.append((bridge_joins_in, True))
    if rewrites.drop_unused_joins:
        steps.append((drop_unused_joins_in, False))
    if rewrites.drop_unnamed_joins:
        steps.append((partial(drop_unnamed_joins, question=asked.question), False))
    if rewrites.relink_literals and target is not None:
        # The data is asked which column holds a literal: only where the query may run anyway.
        probe = DatabaseProbe(target.url, target.dialect, timeout_s=min(target.timeout_s, 5.0))
        steps.append((partial(relink_literals_in, probe=probe), False))
    if rewrites.negate_across_joins:
        steps.append((partial(negate_across_joins, question=asked.question), False))
    if rewrites.drop_unasked_limits:
        steps.append((partial(drop_unasked_limit, question=asked.question, previous_sql=asked.previous_sql), False))
    if rewrites.intersect_conflicting_filters:
        steps.append((split_conflicting_filters, False))
    if rewrites.name_unasked_keys:
        steps.append((partial(name_unasked_keys, question=asked.question), False))
    if rewrites.drop_unasked_family_names:
        steps.append((partial(drop_unasked_family_names, question=asked.question), False))
    return steps


def _with_rewrite(
    validation: ValidationResult, outcome: CandidateOutcome, rewrite, *, dialect: str, schema: DatabaseSchema,
    joined: bool = False,
) -> ValidationResult:
    """A valid statement rewritten without a model call (`_rewrites_of_valid_sql`); kept only if it still
    validates. `joined`: the rewrite added a join."""
    rewritten = rewrite(validation.sql, dialect=dialect, schema=schema)
    if rewritten is None:
        return validation
    revalidated = validate_sql(rewritten[0], dialect=dialect, schema=schema)
    if not revalidated.valid:
        return validation
    outcome.fixes += rewritten[1]
    outcome.joined = outcome.joined or joined
    return revalidated


def _execute(outcome: CandidateOutcome, sql: str, target: ExecutionTarget, budget: ByteBudget) -> None:
    remaining = budget.remaining
    if remaining == 0:
        outcome.fail("execute", f"the request's result budget of {budget.total} bytes is spent", "byte_budget")
        return
    started = time.perf_counter()
    try:
        outcome.result = execute_read_only(
            target.url, sql, max_rows=target.max_rows, timeout_s=target.timeout_s, max_bytes=remaining
        )
        budget.spend(outcome.result.bytes)
        if outcome.result.truncated_by == "bytes":
            budget.exhaust()
    except ExecutionError as e:
        outcome.fail(
            "execute", f"the database refused the query: {e}", "timeout" if isinstance(e, QueryTimeout) else "execution_failed"
        )
    finally:
        outcome.execute_ms = (time.perf_counter() - started) * 1000


def issues_text(validation: ValidationResult) -> str:
    parts = []
    for issue in validation.errors:
        text = issue.message
        if issue.suggestions and not any(s in text for s in issue.suggestions):
            text += f" (did you mean {', '.join(issue.suggestions)}?)"
        parts.append(text)
    return "; ".join(parts)
