"""Strict configs for the Ray Serve app: `applications[].args` in serve_config.yaml is an `AppConfig`.

Every field has a description (README's configuration reference is generated from them), unknown
fields are errors, and deployment options are pure functions of these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from deployments.adapters.catalog import AdapterCatalog, AdapterSpec
from deployments.auth import AuthSettings
from deployments.databases import DatabaseConfig
from deployments.engines.settings import BACKENDS, EngineSettings, LlamaCppSettings
from deployments.errors import ApiError
from deployments.model_source import parse_model_source
from text2sql.pipeline.settings import GenerationDefaults, PipelineSettings
from text2sql.prompts import TEMPLATE_IDS
from text2sql.strict import StrictModel

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9._-]+)?$"


class RayActorOptions(StrictModel):
    num_cpus: float = Field(default=1.0, ge=0, description="CPUs reserved per replica.")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs reserved per replica.")
    memory: PositiveInt | None = Field(default=None, description="Memory reserved per replica, in bytes.")
    accelerator_type: str | None = Field(
        default=None,
        description="GPU model the replica must run on, as Ray names it (ray.util.accelerators): e.g. 'L4', "
        "'A10G', 'A100', 'H100'. None takes any node with the GPUs.",
    )


class RoutingSettings(StrictModel):
    """How Serve picks one of a model's replicas for a request."""

    policy: Literal["prefix_affinity", "power_of_two"] = Field(
        default="prefix_affinity",
        description="prefix_affinity: requests on the same schema (or with the same prompt start) go to the replica "
        "that already holds that prefix in its cache, while queues stay balanced (Ray's PrefixCacheAffinityRouter); "
        "power_of_two: Serve's default, the shorter queue of two random replicas.",
    )
    imbalanced_threshold: float = Field(
        default=2, gt=0,
        description="prefix_affinity only: when replicas' queues differ by more than this many requests, the "
        "shorter queue wins over the cached prefix.",
    )


class AutoscalingSettings(StrictModel):
    min_replicas: int = Field(default=1, ge=0, description="Lower bound; 0 scales to zero when idle.")
    max_replicas: PositiveInt = Field(default=1, description="Upper bound.")
    initial_replicas: int | None = Field(default=None, ge=0, description="Replicas at deploy time.")
    target_ongoing_requests: float = Field(default=1.0, gt=0, description="Ongoing requests per replica to aim for.")
    upscale_delay_s: float = Field(default=5.0, ge=0, description="How long load must stay high before scaling up.")
    downscale_delay_s: float = Field(default=60.0, ge=0, description="How long load must stay low before scaling down.")

    @model_validator(mode="after")
    def _bounds_ordered(self) -> AutoscalingSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) exceeds max_replicas ({self.max_replicas})")
        return self


# A llama.cpp replica queues this many behind its engine lock: Serve's router then hands the next request over
# at once instead of backing off and retrying while the one slot is busy (measured: 1.24 requests/s at
# concurrency 4 against 1.61 at concurrency 1, with one slot).
LLAMA_CPP_QUEUE_DEPTH = 4


def _default_max_ongoing_requests(engine: EngineSettings) -> int:
    if engine.backend == "llama_cpp":
        return LLAMA_CPP_QUEUE_DEPTH
    return getattr(engine, "max_batch_size", None) or getattr(engine, "max_num_seqs", None) or 1


class ModelConfig(StrictModel):
    name: str = Field(pattern=MODEL_NAME_PATTERN, description="Served model name: what users put in 'model'.")
    backend: Literal[BACKENDS] = Field(  # type: ignore[valid-type]
        default="llama_cpp", description=f"Inference engine: one of {', '.join(BACKENDS)}; selects the `engine` settings."
    )
    source: str = Field(
        description="Where the weights come from: 'embedded:<name>', a local path, 'hf:<repo>[/<file>]', "
        "'modelscope:<id>' or 's3://<bucket>/<key or prefix>'."
    )
    prompt_template: str = Field(default="qwen-chat", description=f"Prompt template id: one of {TEMPLATE_IDS}.")
    generation: GenerationDefaults = Field(default_factory=GenerationDefaults, description="Generation defaults.")
    engine: EngineSettings = Field(default_factory=LlamaCppSettings, description="The backend's own settings.")
    ray_actor_options: RayActorOptions = Field(default_factory=RayActorOptions, description="Per-replica resources.")
    routing: RoutingSettings = Field(default_factory=RoutingSettings, description="Choosing a replica per request.")
    autoscaling_config: AutoscalingSettings | None = Field(
        default=None, description="Autoscaling; when absent the deployment runs num_replicas replicas."
    )
    num_replicas: PositiveInt = Field(default=1, description="Fixed replica count when autoscaling is off.")
    max_ongoing_requests: PositiveInt | None = Field(
        default=None,
        description="Requests Serve hands one replica at once. Default: 4 for llama_cpp (it runs one generation at "
        "a time and queues the rest itself, so Serve's router does not back off between requests); "
        "engine.max_batch_size for transformers, so a batch can fill; engine.max_num_seqs for vllm; 1 otherwise.",
    )
    max_queued_requests: int = Field(
        default=-1, ge=-1, description="Requests waiting beyond that before a 503; -1 is unbounded."
    )
    constrained_decoding: bool = Field(
        default=False,
        description="Restrict generation to the schema's identifiers with a grammar (engines that support one: llama_cpp, vllm).",
    )
    max_tokens_limit: PositiveInt = Field(
        default=1024,
        description="Most tokens a request may ask for (max_tokens, max_completion_tokens); more is a 400. "
        "generation.max_tokens must not exceed it.",
    )
    max_adapters_per_replica: PositiveInt = Field(
        default=4,
        description="LoRA adapters one replica keeps loaded (engines that load adapters); the least recently used "
        "goes first. Requests for an adapter prefer replicas that hold it (Serve's model multiplexing).",
    )
    generation_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Longest one generation may run before it is stopped (504). Keep it below "
        "ingress.request_timeout_s: otherwise the ingress gives up first (504) and cancels the generation.",
    )

    @model_validator(mode="before")
    @classmethod
    def _backend_selects_engine_settings(cls, data: object) -> object:
        # `backend` is written beside `engine`; the settings union is discriminated by the same name inside it.
        if not isinstance(data, dict):
            return data
        engine = data.get("engine")
        engine = dict(engine) if isinstance(engine, dict) else engine
        backend = data.get("backend")
        if isinstance(engine, dict):
            inner = engine.setdefault("backend", backend or "llama_cpp")
            if backend is not None and inner != backend:
                raise ValueError(f"backend {backend!r} and engine.backend {inner!r} disagree; give one")
            return {**data, "backend": inner, "engine": engine}
        if engine is None and backend is not None:
            return {**data, "engine": {"backend": backend}}
        return data

    @model_validator(mode="after")
    def _default_concurrency(self) -> ModelConfig:
        if self.max_ongoing_requests is None:
            self.max_ongoing_requests = _default_max_ongoing_requests(self.engine)
        return self

    @field_validator("source")
    @classmethod
    def _source_parses(cls, value: str) -> str:
        parse_model_source(value)  # raises ValueError quoting the bad value
        return value

    @field_validator("prompt_template")
    @classmethod
    def _template_known(cls, value: str) -> str:
        if value not in TEMPLATE_IDS:
            raise ValueError(f"unknown prompt_template {value!r}; known: {', '.join(TEMPLATE_IDS)}")
        return value

    @model_validator(mode="after")
    def _default_max_tokens_within_limit(self) -> ModelConfig:
        if self.generation.max_tokens > self.max_tokens_limit:
            raise ValueError(
                f"generation.max_tokens ({self.generation.max_tokens}) exceeds max_tokens_limit ({self.max_tokens_limit})"
            )
        return self


class RequestLimits(StrictModel):
    max_question_chars: PositiveInt = Field(default=2_000, description="Longest question accepted (413 beyond).")
    max_schema_chars: PositiveInt = Field(default=200_000, description="Longest schema text accepted (413 beyond).")
    max_evidence_chars: PositiveInt = Field(default=4_000, description="Longest evidence accepted (413 beyond).")
    max_history_chars: PositiveInt = Field(
        default=50_000, description="Longest conversation history accepted, questions plus SQL (413 beyond)."
    )
    max_prompt_chars: PositiveInt = Field(
        default=64_000, description="Longest OpenAI prompt or message total accepted (413 beyond)."
    )
    max_request_bytes: PositiveInt = Field(default=1_048_576, description="Largest HTTP body accepted (413 beyond).")


class IngressSettings(StrictModel):
    num_cpus: float = Field(
        default=0.0, ge=0, description="CPUs reserved by the ingress; 0 leaves the cores to the models."
    )
    num_replicas: PositiveInt = Field(default=1, description="Ingress replicas.")
    max_ongoing_requests: PositiveInt = Field(default=256, description="Requests one ingress replica holds at once.")
    request_timeout_s: float = Field(default=300.0, gt=0, description="Give up on a model call after this long.")
    warm_up_databases: int = Field(
        default=1, ge=0,
        description="At start, before /health turns 200, every configured database is introspected, and each model "
        "prefills the prompt prefix of the first this many (in config order), so a first question is as fast as "
        "the next. Every replica started later (autoscaling, a restart, scale from zero) prefills them too as soon "
        "as it starts. llama.cpp keeps as many prefixes as its engine.prompt_cache_mb holds; 0 prefills none.",
    )
    health_check_interval_s: float = Field(
        default=2.0, gt=0, le=300,
        description="How often the ingress reads the model deployments' state in the background; /health answers "
        "from the last reading at once, however busy the replicas are.",
    )
    health_stale_after_s: float = Field(
        default=60.0, gt=0,
        description="/health reports 503 when no reading of the deployments' state has succeeded for this long.",
    )


class AppConfig(StrictModel):
    models: list[ModelConfig] = Field(min_length=1, description="Model deployments, one per served name.")
    default_model: str | None = Field(default=None, description="Model used when a request names none; the first.")
    adapters: list[AdapterSpec] = Field(
        default_factory=list,
        description="LoRA adapters served from the start, each as `<base>:<name>` and as `<name>`; more can be "
        "registered at run time with POST /v1/adapters (admin).",
    )
    adapter_watch_dir: str | None = Field(
        default=None,
        description="A directory whose adapter subdirectories (training jobs' output: peft files and "
        "text2sql-adapter.json naming `served_base`) are served as they appear and dropped as they go.",
    )
    adapter_watch_interval_s: float = Field(default=10.0, gt=0, le=3600, description="How often it is scanned.")
    databases: dict[str, DatabaseConfig] = Field(
        default_factory=dict, description="Named databases users can ask about (`database` in a request)."
    )
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings, description="Validation and repair.")
    limits: RequestLimits = Field(default_factory=RequestLimits, description="Request size limits.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="API keys; the API is open without any.")
    ingress: IngressSettings = Field(default_factory=IngressSettings, description="The routing deployment.")

    @model_validator(mode="after")
    def _names_unique_and_default_known(self) -> AppConfig:
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {duplicates}")
        if self.default_model is None:
            self.default_model = names[0]
        elif self.default_model not in names:
            raise ValueError(f"default_model {self.default_model!r} is not one of the models: {names}")
        return self

    @model_validator(mode="after")
    def _adapters_fit_their_bases(self) -> AppConfig:
        try:
            AdapterCatalog(self.base_templates, self.adapters)
        except ApiError as e:
            raise ValueError(e.message) from None
        return self

    @property
    def base_templates(self) -> dict[str, str]:
        """Each served model's prompt template: what an adapter on it must have been trained with."""
        return {m.name: m.prompt_template for m in self.models}

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]


__all__ = [
    "AppConfig",
    "AutoscalingSettings",
    "GenerationDefaults",
    "IngressSettings",
    "LlamaCppSettings",
    "ModelConfig",
    "PipelineSettings",
    "RayActorOptions",
    "RequestLimits",
]
