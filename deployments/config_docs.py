"""Render the configuration reference (README.md) from the config models' field descriptions.

    python -m deployments.config_docs      # prints the Markdown; a unit test keeps README in sync
"""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from deployments.auth import ApiKeyConfig, AuthSettings
from deployments.config import (
    AppConfig,
    AutoscalingSettings,
    GenerationDefaults,
    IngressSettings,
    LlamaCppSettings,
    ModelConfig,
    PipelineSettings,
    RayActorOptions,
    RequestLimits,
)
from deployments.databases import DatabaseConfig
from deployments.engines.settings import TransformersSettings, VllmSettings

SECTIONS: list[tuple[str, type[BaseModel]]] = [
    ("`args` (AppConfig)", AppConfig),
    ("`args.models[]` (ModelConfig)", ModelConfig),
    ("`args.models[].generation`", GenerationDefaults),
    ("`args.models[].engine` (llama_cpp)", LlamaCppSettings),
    ("`args.models[].engine` (transformers)", TransformersSettings),
    ("`args.models[].engine` (vllm)", VllmSettings),
    ("`args.models[].ray_actor_options`", RayActorOptions),
    ("`args.models[].autoscaling_config`", AutoscalingSettings),
    ("`args.databases.<name>` (DatabaseConfig)", DatabaseConfig),
    ("`args.pipeline`", PipelineSettings),
    ("`args.limits`", RequestLimits),
    ("`args.auth`", AuthSettings),
    ("`args.auth.api_keys[]`, `args.auth.admin_keys[]`", ApiKeyConfig),
    ("`args.ingress`", IngressSettings),
]


def _default(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "`[]`" if value == [] else "see below" if isinstance(value, BaseModel) else f"`{value!r}`"
    if field.default is PydanticUndefined:
        return "required"
    return f"`{field.default!r}`" if field.default is not None else "`null`"


def render_reference() -> str:
    lines: list[str] = []
    for title, model in SECTIONS:
        lines += [f"#### {title}", "", "| field | default | description |", "|---|---|---|"]
        for name, field in model.model_fields.items():
            description = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{field.alias or name}` | {_default(field)} | {description} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
