"""Prefix-cache-aware routing between the replicas of one model: Ray's PrefixCacheAffinityRouter, told what text
decides a replica's cache.

llama.cpp keeps the prompt it evaluated last, and a question on a database it has just read skips the schema's
prefill (about 1 s instead of 20-40 s on 2 cores for Chinook). With several replicas, Serve's default router
spreads a database's questions over all of them and each pays that prefill. Ray's router keeps a prefix tree of
the text each replica was sent and, while the replicas' queues are balanced, sends a request to the replica
whose text matches it best; it falls back to the least-used replica for new text and to power-of-two choices
when queues are unbalanced.

It reads `prompt` or `messages` from a request. A Text-to-SQL request carries neither: its prompt is rendered
on the replica from the schema the ingress resolved. So the text it routes on is the schema's identity (the
database and its tables, what the rendered prompt starts with) followed by the question.
"""

from __future__ import annotations

from typing import Any

# The public `ray.serve.llm.request_router` re-exports this class, but importing it requires vLLM or SGLang;
# the class itself does not (pyproject pins Ray below 2.61, where this path exists; a test checks it).
from ray.llm._internal.serve.routing_policies.prefix_aware.prefix_aware_router import (
    PrefixCacheAffinityRouter,
)

from text2sql.pipeline.inputs import SchemaContext

ROUTER_CLASS = "deployments.routing.SchemaAffinityRouter"


def schema_routing_text(context: SchemaContext, question: str = "") -> str:
    """What a Text-to-SQL request's prompt starts with, in short: requests on one schema share it."""
    if context.schema_ is not None:
        tables = " ".join(table.name for table in context.schema_.tables)
        head = f"database {context.database or context.schema_.name or ''}: {tables}"
    else:
        head = f"schema: {context.raw_text or ''}"
    return f"{head}\n{question}"


def request_routing_text(args: tuple | list) -> str | None:
    """The text a model call routes on: the schema and question of a Text-to-SQL call or a warm-up, the messages
    or prompt of an OpenAI call, None for anything else (adapter loads, stats): those go by load alone."""
    context = next((arg for arg in args if isinstance(arg, SchemaContext)), None)
    if context is not None:
        question = next((arg.question for arg in args if isinstance(getattr(arg, "question", None), str)), "")
        return schema_routing_text(context, question)
    for arg in args:
        if hasattr(arg, "messages"):
            return "".join(_content_text(getattr(m, "content", None) if not isinstance(m, dict) else m.get("content")) for m in arg.messages) or None
        if hasattr(arg, "prompt"):
            return _content_text(arg.prompt) or None
    return None


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_content_text(part.get("text") if isinstance(part, dict) else part) for part in content)
    return ""


class SchemaAffinityRouter(PrefixCacheAffinityRouter):
    """Ray's prefix-affinity router, routing on `request_routing_text`. Ray's own extraction would raise on calls
    without a prompt and read nothing from pydantic chat messages (then divide by the empty text's length)."""

    def _extract_text_from_request(self, pending_request: Any) -> str | None:
        return request_routing_text(pending_request.args or ())
