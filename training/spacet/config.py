"""A SPACE-T fine-tuning job's configuration: one YAML file, checked strictly before any work.

    name: spacet-shop
    model: modelscope:damo/nlp_convai_text2sql_pretrain_cn   # or a local SPACE-T model directory
    data:
      train: data/shop_spacet.jsonl
      eval_fraction: 0.1
      databases: {shop: {url: "sqlite:///shop.db"}}
    optim: {epochs: 3, batch_size: 16}
    storage_path: ~/ray_results
    output_dir: models

`optim` holds the arguments of ModelScope's `TableQuestionAnsweringTrainer.train`, with its defaults.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, PositiveFloat, PositiveInt, field_validator, model_validator

from deployments.databases import DatabaseConfig
from text2sql.strict import StrictModel

# What serving reads per table by default (ModelScopeTableQaSettings.max_rows_per_table).
SERVED_ROWS_PER_TABLE = 10_000


class SpaceTDataSettings(StrictModel):
    train: Path = Field(description="Training JSONL: {question, table, database?, sql | query, history?, action?}.")
    eval: Path | None = Field(
        default=None,
        description="Held-out JSONL that ModelScope's trainer scores after every epoch (it keeps the best epoch); "
        "null splits `eval_fraction` off `train`.",
    )
    eval_fraction: float = Field(
        default=0.0, ge=0, lt=1,
        description="Share of `train` held out when `eval` is null; 0 scores the epochs on the training records.",
    )
    databases: dict[str, DatabaseConfig] = Field(
        default_factory=dict, description="Databases that records name, configured as in the app."
    )
    max_rows_per_table: PositiveInt = Field(
        default=SERVED_ROWS_PER_TABLE,
        description="Rows read from each table for SPACE-T's value linking; keep it as the served model's setting.",
    )


class SpaceTOptimSettings(StrictModel):
    """ModelScope's trainer has epochs, not a step count: steps = ceil(records / batch_size) per epoch."""

    epochs: PositiveInt = Field(default=20, description="Passes over the training records (its total_epoches).")
    batch_size: PositiveInt = Field(default=16, description="Records per step.")
    backbone_learning_rate: PositiveFloat = Field(default=1e-5, description="Peak learning rate of the encoder.")
    head_learning_rate: PositiveFloat = Field(default=5e-4, description="Peak learning rate of the SQL heads.")
    backbone_weight_decay: float = Field(default=0.01, ge=0, description="AdamW weight decay of the encoder.")
    head_weight_decay: float = Field(default=0.01, ge=0, description="AdamW weight decay of the SQL heads.")
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1, description="Share of the steps warming up (then linear decay).")
    seed: int = Field(default=0, description="Seed for shuffling and dropout.")


class SpaceTScalingSettings(StrictModel):
    """Ray Train's ScalingConfig. One worker: ModelScope's trainer is single-process (no DistributedDataParallel,
    no distributed sampler), so more workers would each train a separate copy."""

    num_workers: int = Field(default=1, description="Always 1 (see above).")
    use_gpu: bool = Field(default=False, description="Train on the worker's GPU.")
    resources_per_worker: dict[str, float] = Field(
        default_factory=lambda: {"CPU": 1}, description="Ray resources the worker reserves, e.g. {CPU: 4}."
    )

    @field_validator("num_workers")
    @classmethod
    def _one_worker(cls, value: int) -> int:
        if value != 1:
            raise ValueError(
                f"num_workers is {value}, but ModelScope's table-QA trainer is single-process (no DDP): each worker "
                "would train its own copy; use 1 (and more CPUs or a GPU per worker)"
            )
        return value


class SpaceTTrainingConfig(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Run name: the output directory's name.")
    model: str = Field(
        description="The SPACE-T model to start from, written like a served model's `source`: a local model "
        "directory (configuration.json, pytorch_model.bin, vocab.txt) or 'modelscope:damo/nlp_convai_text2sql_pretrain_cn'."
    )
    data: SpaceTDataSettings
    optim: SpaceTOptimSettings = Field(default_factory=SpaceTOptimSettings)
    scaling: SpaceTScalingSettings = Field(default_factory=SpaceTScalingSettings)
    storage_path: str = Field(
        default="~/ray_results", description="Where Ray Train keeps the run's checkpoint: a directory or an s3:// URI."
    )
    output_dir: Path = Field(
        default=Path("models"), description="The fine-tuned model directory goes to <output_dir>/<name>."
    )

    @model_validator(mode="after")
    def _held_out_from_one_place(self) -> SpaceTTrainingConfig:
        if self.data.eval is not None and self.data.eval_fraction:
            raise ValueError("give data.eval or data.eval_fraction, not both")
        return self


def load_spacet_config(path: Path) -> SpaceTTrainingConfig:
    """Relative paths are read from the working directory (the repository root, also under `ray job submit`)."""
    raw = yaml.safe_load(Path(path).read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a training config is a mapping, got {type(raw).__name__}")
    return SpaceTTrainingConfig.model_validate(raw)
