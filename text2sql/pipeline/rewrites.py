"""Which fixes and rewrites a candidate gets without a model call: one switch each, set per request (a field of
`SqlTask`) or else by the app (`PipelineSettings`), resolved once per request and handed to `check_candidate`."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ConfigDict

from text2sql.strict import StrictModel


class Rewrites(StrictModel):
    """The switches' resolved values; each is documented where it is set (`PipelineSettings`)."""

    model_config = ConfigDict(frozen=True)

    fix_identifiers: bool = True
    complete_joins: bool = True
    bridge_joins: bool = True
    drop_unused_joins: bool = True
    drop_unnamed_joins: bool = True
    relink_literals: bool = True
    intersect_conflicting_filters: bool = True
    negate_across_joins: bool = True
    drop_unasked_limits: bool = True
    name_unasked_keys: bool = True
    drop_unasked_family_names: bool = True

    @classmethod
    def resolved(cls, request: object, settings: object) -> Rewrites:
        """Each switch as the request sets it, or else as the settings do (a request's None means "not set")."""
        values = {}
        for name in cls.model_fields:
            asked = getattr(request, name)
            values[name] = asked if asked is not None else getattr(settings, name)
        return cls(**values)


@dataclass(frozen=True)
class Asked:
    """What the rewrites that depend on the wording read: the question, and in a follow-up the SQL of the turn
    before it."""

    question: str | None = None
    previous_sql: str | None = None
