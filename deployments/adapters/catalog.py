"""Which adapters exist: their names, base models, sources and prompt templates. Pure Python, no Ray.

An adapter named `sql-v2` on base `qwen2.5-coder-0.5b` is served as `qwen2.5-coder-0.5b:sql-v2` (its model id,
also the multiplexed model id its requests carry) and under its own name, `sql-v2`. Each registration gets a
fresh revision, so a replica holding an older load of the same name knows to reload it.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import Field, field_validator

from deployments.errors import AdapterConflict, ModelNotFound
from deployments.model_source import parse_model_source
from text2sql.prompts import TEMPLATE_IDS
from text2sql.strict import StrictModel

ADAPTER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class AdapterSpec(StrictModel):
    """An adapter to serve, as written in the config's `adapters:` or posted to `POST /v1/adapters`."""

    name: str = Field(pattern=ADAPTER_NAME_PATTERN, max_length=128, description="Adapter name, unique in the app.")
    base: str = Field(description="The served model it adapts; its requests run on that model's replicas.")
    path: str = Field(
        description="Where the peft LoRA adapter (adapter_config.json + adapter_model.safetensors) lives: a local "
        "directory, a shared volume, 's3://bucket/prefix' or 'hf:<repo>'."
    )
    prompt_template: str | None = Field(
        default=None,
        description="Prompt template the adapter was trained with; null takes the base model's. A template "
        "different from the base model's is refused (409).",
    )

    @field_validator("path")
    @classmethod
    def _path_parses(cls, value: str) -> str:
        source = parse_model_source(value)  # raises ValueError quoting the bad value
        if source.kind == "embedded":
            raise ValueError(f"{value!r}: an adapter comes from a directory, s3:// or hf:, not an embedded model")
        return value

    @field_validator("prompt_template")
    @classmethod
    def _template_known(cls, value: str | None) -> str | None:
        if value is not None and value not in TEMPLATE_IDS:
            raise ValueError(f"unknown prompt_template {value!r}; known: {', '.join(TEMPLATE_IDS)}")
        return value


class RegisteredAdapter(StrictModel):
    name: str
    base: str
    path: str
    prompt_template: str
    model_id: str = Field(description="`<base>:<name>`: the served name and the multiplexed model id.")
    revision: str = Field(description="New on every registration; replicas reload when it changes.")
    origin: Literal["config", "api", "watch"]
    created: int


class AdapterCatalog:
    """The app's adapters. `base_templates` maps each served base model to its prompt template."""

    def __init__(self, base_templates: dict[str, str], specs: list[AdapterSpec] = ()) -> None:
        self._base_templates = dict(base_templates)
        self._adapters: dict[str, RegisteredAdapter] = {}
        for spec in specs:
            self.register(spec, origin="config")

    def register(self, spec: AdapterSpec, *, origin: Literal["config", "api", "watch"] = "api") -> RegisteredAdapter:
        base_template = self._base_templates.get(spec.base)
        if base_template is None:
            raise ModelNotFound(
                f"adapter {spec.name!r}: base model {spec.base!r} is not served; served: "
                f"{', '.join(sorted(self._base_templates))}",
                param="base",
            )
        if spec.name in self._base_templates:
            raise AdapterConflict(f"{spec.name!r} is already a served model's name", param="name")
        if spec.name in self._adapters:
            raise AdapterConflict(
                f"adapter {spec.name!r} is already registered (on {self._adapters[spec.name].base}); "
                "DELETE /v1/adapters/{name} first to replace it",
                param="name",
            )
        template = spec.prompt_template or base_template
        if template != base_template:
            raise AdapterConflict(
                f"adapter {spec.name!r} was trained with prompt template {template!r}, but its base "
                f"{spec.base!r} serves {base_template!r}: its answers would be prompted in a format it never saw",
                param="prompt_template",
            )
        adapter = RegisteredAdapter(
            name=spec.name, base=spec.base, path=spec.path, prompt_template=template,
            model_id=f"{spec.base}:{spec.name}", revision=uuid.uuid4().hex, origin=origin, created=int(time.time()),
        )
        self._adapters[spec.name] = adapter
        return adapter

    def remove(self, name: str) -> RegisteredAdapter:
        adapter = self.resolve(name)
        if adapter is None:
            raise ModelNotFound(f"no adapter named {name!r}; registered: {', '.join(sorted(self._adapters)) or 'none'}")
        return self._adapters.pop(adapter.name)

    def resolve(self, served_name: str) -> RegisteredAdapter | None:
        """The adapter a request's `model` names, as `<base>:<name>` or as `<name>`; None if it names none."""
        base, _, name = served_name.rpartition(":")
        adapter = self._adapters.get(name)
        if adapter is None or (base and adapter.base != base):
            return None
        return adapter

    def listing(self) -> list[RegisteredAdapter]:
        return sorted(self._adapters.values(), key=lambda a: a.model_id)

    def revisions(self, base: str) -> dict[str, str]:
        """model id -> revision of every adapter on `base`: what its replicas may keep loaded."""
        return {a.model_id: a.revision for a in self._adapters.values() if a.base == base}
