"""A fine-tuning job's configuration: one YAML file (training/configs/*.yaml), checked strictly before any work.

The job renders its examples with the served prompt of `prompt_template`, so the adapter is served with the same
template; `databases` are configured exactly as in the app, for records that name a database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from deployments.databases import DatabaseConfig
from text2sql.pipeline.settings import PipelineSettings
from text2sql.prompts.registry import TEMPLATE_IDS
from text2sql.strict import StrictModel


class LoraSettings(StrictModel):
    r: PositiveInt = Field(default=16, description="LoRA rank: adapter size grows linearly with it.")
    alpha: PositiveInt = Field(default=32, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(default=0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        min_length=1,
        description="Module names that get an adapter (attention projections; add gate_proj/up_proj/down_proj for the MLP).",
    )
    layers_to_transform: list[int] | None = Field(
        default=None, description="Only these transformer blocks (0-based); null adapts every block."
    )


class ScalingSettings(StrictModel):
    """Ray Train's ScalingConfig: how many workers and what each one holds."""

    num_workers: PositiveInt = Field(default=1, description="Data-parallel training workers (DDP; gloo on CPU).")
    use_gpu: bool = Field(default=False, description="One GPU per worker (NCCL).")
    resources_per_worker: dict[str, float] = Field(
        default_factory=lambda: {"CPU": 1}, description="Ray resources each worker reserves, e.g. {CPU: 4, GPU: 1}."
    )


class OptimSettings(StrictModel):
    learning_rate: PositiveFloat = Field(default=2e-4, description="Peak learning rate.")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        default="cosine", description="Learning-rate schedule after warm-up."
    )
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1, description="Fraction of the steps spent warming up.")
    per_device_batch_size: PositiveInt = Field(default=4, description="Examples per worker per step.")
    gradient_accumulation_steps: PositiveInt = Field(default=4, description="Steps accumulated per optimizer update.")
    max_steps: PositiveInt | None = Field(default=None, description="Optimizer updates; null trains `epochs` epochs.")
    epochs: PositiveFloat = Field(default=1.0, description="Passes over the data when max_steps is null.")
    max_length: PositiveInt = Field(default=2048, description="Tokens per example; longer ones are cut from the end.")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        default="auto", description="auto: bf16 where the device supports it (CUDA with bf16), else fp32."
    )
    gradient_checkpointing: bool = Field(default=False, description="Trade compute for activation memory.")
    seed: int = Field(default=0, description="Seed for sampling, shuffling and LoRA initialisation.")


class DataSettings(StrictModel):
    train: Path = Field(description="Training JSONL ({question, schema | database, sql, evidence, history}).")
    eval: Path | None = Field(default=None, description="Held-out JSONL; null splits `eval_fraction` off `train`.")
    eval_fraction: float = Field(default=0.0, ge=0, lt=1, description="Share of `train` held out when `eval` is null.")
    limit: PositiveInt | None = Field(default=None, description="Train on the first N records after shuffling.")
    databases: dict[str, DatabaseConfig] = Field(
        default_factory=dict, description="Databases that records name, configured as in the app."
    )
    databases_dir: Path | None = Field(
        default=None,
        description="SQLite files by name (<name>/<name>.sqlite, Spider's layout, or <name>.sqlite) for records whose "
        "schema names its database: the held-out evaluation runs the SQL there.",
    )


class EvaluationSettings(StrictModel):
    """At the end of training: execution accuracy of the base model and the adapter on the held-out split."""

    enabled: bool = Field(default=False, description="Evaluate both after training (needs gold SQL that runs).")
    limit: PositiveInt | None = Field(default=None, description="At most this many held-out questions.")
    max_tokens: PositiveInt = Field(default=256, description="Generation cap per question.")


class TrainingConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Run name: the adapter's default name.")
    base_model: str = Field(
        description="Written like a served model's `source`: 'embedded:<name>' (a GGUF, converted once to a plain HF "
        "checkpoint and cached), 'hf:<owner>/<repo>', or a local HF directory or .gguf file."
    )
    prompt_template: str = Field(default="qwen-chat", description=f"Served prompt template: one of {TEMPLATE_IDS}.")
    pipeline: PipelineSettings = Field(
        default_factory=PipelineSettings, description="Pipeline settings used to render the examples, as served."
    )
    context_length: PositiveInt = Field(default=4096, description="Context the served model has (fits the schema).")
    data: DataSettings
    lora: LoraSettings = Field(default_factory=LoraSettings)
    load_in_4bit: bool = Field(default=False, description="QLoRA: the frozen base in 4-bit NF4 (bitsandbytes).")
    optim: OptimSettings = Field(default_factory=OptimSettings)
    scaling: ScalingSettings = Field(default_factory=ScalingSettings)
    storage_path: str = Field(
        default="~/ray_results", description="Where Ray Train writes checkpoints: a directory or an s3:// URI."
    )
    output_dir: Path = Field(default=Path("adapters"), description="The finished adapter goes to <output_dir>/<name>.")
    log_every_steps: PositiveInt = Field(default=10, description="Log loss, tokens/s and ETA every N steps.")
    checkpoint_every_steps: PositiveInt = Field(default=50, description="Checkpoint (and report to Ray Train) every N steps.")
    keep_checkpoints: PositiveInt = Field(default=2, description="Checkpoints kept in storage_path.")
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    served_base: str | None = Field(
        default=None, description="The served model (its name in the app) the adapter adapts: --register needs it."
    )
    export_gguf: bool = Field(
        default=True, description="Also write a GGUF LoRA for the llama.cpp engine (needs a GGUF base model)."
    )

    @model_validator(mode="after")
    def _template_known(self) -> TrainingConfig:
        if self.prompt_template not in TEMPLATE_IDS:
            raise ValueError(f"prompt_template {self.prompt_template!r} is unknown; use one of {TEMPLATE_IDS}")
        return self


def load_training_config(path: Path) -> TrainingConfig:
    """Relative paths are read from the working directory: the repository root, locally and under
    `ray job submit --working-dir .`."""
    raw = yaml.safe_load(Path(path).read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a training config is a mapping, got {type(raw).__name__}")
    return TrainingConfig.model_validate(raw)
