"""The model side of a job: the base loaded for training (full precision or 4-bit for QLoRA), the LoRA config, and
trl's SFT arguments derived from the job's config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from training.base_model import resolve_base_model
from training.config import TrainingConfig

logger = logging.getLogger(__name__)


def load_for_training(config: TrainingConfig) -> tuple[Any, Any]:
    """(model, tokenizer). With `load_in_4bit` the frozen base is NF4 through bitsandbytes (QLoRA), which has CPU
    kernels too; `prepare_model_for_kbit_training` then makes the quantized model trainable."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = resolve_base_model(config.base_model)
    kwargs: dict[str, Any] = {"dtype": torch_dtype(config)}
    if config.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if use_bf16(config) or not config.scaling.use_gpu else torch.float16,
        )
    tokenizer = AutoTokenizer.from_pretrained(base.checkpoint)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base.checkpoint, **kwargs)
    if config.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.optim.gradient_checkpointing)
    logger.info("base model %s loaded from %s (4-bit: %s)", config.base_model, base.checkpoint, config.load_in_4bit)
    return model, tokenizer


def use_bf16(config: TrainingConfig) -> bool:
    import torch

    if config.optim.precision != "auto":
        return config.optim.precision == "bf16"
    # On the CPU fp32 is both faster and exact; bf16 where a GPU has it.
    return config.scaling.use_gpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def torch_dtype(config: TrainingConfig) -> Any:
    import torch

    if use_bf16(config):
        return torch.bfloat16
    return torch.float16 if config.optim.precision == "fp16" else torch.float32


def lora_config(config: TrainingConfig) -> Any:
    from peft import LoraConfig

    lora = config.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        layers_to_transform=lora.layers_to_transform,
        bias="none",
        task_type="CAUSAL_LM",
    )


def sft_arguments(config: TrainingConfig, *, output_dir: Path, has_eval: bool) -> Any:
    """Checkpoints every `checkpoint_every_steps` (Ray Train keeps them), loss every `log_every_steps`."""
    from trl import SFTConfig

    optim = config.optim
    bf16 = use_bf16(config)
    return SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=optim.per_device_batch_size,
        per_device_eval_batch_size=optim.per_device_batch_size,
        gradient_accumulation_steps=optim.gradient_accumulation_steps,
        learning_rate=optim.learning_rate,
        lr_scheduler_type=optim.lr_scheduler,
        warmup_steps=optim.warmup_ratio,  # a float below 1 is a ratio of the total steps
        max_steps=optim.max_steps or -1,
        num_train_epochs=optim.epochs,
        max_length=optim.max_length,
        bf16=bf16,
        fp16=optim.precision == "fp16" and not bf16,
        gradient_checkpointing=optim.gradient_checkpointing,
        seed=optim.seed,
        data_seed=optim.seed,
        logging_steps=config.log_every_steps,
        save_strategy="steps",
        save_steps=config.checkpoint_every_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.checkpoint_every_steps if has_eval else None,
        report_to=[],
        use_cpu=not config.scaling.use_gpu,
        ddp_backend=None if config.scaling.use_gpu else "gloo",
        include_num_input_tokens_seen="non_padding",
        completion_only_loss=True,
        dataloader_num_workers=0,
        save_only_model=False,
    )
