"""The text each model call is routed on, and the router's place in the deployment options."""

from __future__ import annotations

from types import SimpleNamespace

from deployments.config import ModelConfig
from deployments.model_server import ModelServer
from deployments.protocol.openai import ChatCompletionRequest, CompletionRequest
from deployments.protocol.sql import SqlGenerateRequest
from deployments.routing import ROUTER_CLASS, SchemaAffinityRouter, request_routing_text, schema_routing_text
from text2sql.pipeline.inputs import SchemaContext
from text2sql.schema.model import Column, DatabaseSchema, Table


def context(database: str, *tables: str) -> SchemaContext:
    schema = DatabaseSchema(tables=[Table(name=t, columns=[Column(name="id", type="INTEGER")]) for t in tables])
    return SchemaContext(schema_=schema, dialect="sqlite", database=database)


def test_questions_on_one_schema_share_a_long_prefix_and_other_schemas_do_not():
    chinook = context("chinook", "Artist", "Album", "Track", "Invoice", "Customer")
    first = request_routing_text((SqlGenerateRequest(question="How many artists?"), chinook, 0.0))
    second = request_routing_text((SqlGenerateRequest(question="List every album."), chinook, 0.0))
    other = request_routing_text((SqlGenerateRequest(question="How many artists?"), context("shop", "orders"), 0.0))
    shared = len(next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b) * "x")
    assert shared / len(second) > 0.5, (first, second)
    assert not other.startswith(first[:10])


def test_a_warm_up_routes_on_its_schema_alone():
    chinook = context("chinook", "Artist", "Album")
    assert request_routing_text((chinook,)) == schema_routing_text(chinook)
    assert request_routing_text((SqlGenerateRequest(question="q"), chinook, 0.0)).startswith(schema_routing_text(chinook))


def test_openai_calls_route_on_their_messages_or_prompt():
    chat = ChatCompletionRequest(model="m", messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}])
    assert request_routing_text((chat, 0.0)) == "SQ"
    assert request_routing_text((CompletionRequest(model="m", prompt="SELECT"), 0.0)) == "SELECT"


def test_calls_without_text_go_by_load_alone():
    """Ray's own extraction raises on these; an empty text would divide by zero in its match rate."""
    assert request_routing_text((SimpleNamespace(name="adapter"),)) is None
    assert request_routing_text(()) is None
    assert request_routing_text((CompletionRequest(model="m", prompt=""), 0.0)) is None


def test_the_router_subclasses_rays_prefix_router_and_is_configured_by_default():
    from ray.serve._private.request_router.request_router import RequestRouter

    assert issubclass(SchemaAffinityRouter, RequestRouter)
    assert ROUTER_CLASS == f"{SchemaAffinityRouter.__module__}.{SchemaAffinityRouter.__name__}"
    model = ModelConfig(name="m", source="/x.gguf")
    options = ModelServer.get_deployment_options(model)
    router = options["request_router_config"]
    assert router.request_router_class == ROUTER_CLASS and router.request_router_kwargs == {"imbalanced_threshold": 2}
    plain = ModelConfig(name="m", source="/x.gguf", routing={"policy": "power_of_two"})
    assert "request_router_config" not in ModelServer.get_deployment_options(plain)
