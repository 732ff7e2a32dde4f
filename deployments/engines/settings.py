"""Engine settings, one strict model per backend, discriminated by `backend`.

A model's config names its backend once (`backend: llama_cpp` beside `engine:`, or inside it); the union picks
the settings model, and `registry.py` the engine class. Nothing else asks which backend a model uses.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from text2sql.strict import StrictModel


class LlamaCppSettings(StrictModel):
    backend: Literal["llama_cpp"] = Field(default="llama_cpp", description="llama.cpp (llama-cpp-python), GGUF files.")
    n_ctx: PositiveInt = Field(default=4096, description="Context window in tokens.")
    n_threads: PositiveInt | None = Field(default=None, description="CPU threads; None uses num_cpus.")
    n_batch: PositiveInt = Field(default=512, description="Prompt-processing batch size.")
    use_mmap: bool = Field(default=True, description="Memory-map the GGUF instead of reading it in.")
    prompt_cache_mb: NonNegativeInt = Field(
        default=256,
        description="RAM for earlier prompt prefixes (one per schema, the newest kept): a question on a database "
        "asked about before restores its schema's state instead of reading it again. Per adapter in use; 0 keeps "
        "only the prompt evaluated last.",
    )
    prompt_store_mb: NonNegativeInt = Field(
        default=1024,
        description="Disk (under the model cache's prefixes/ folder) for the schemas' prompt prefixes, shared by the "
        "replicas of a node: a replica that starts later (scale from zero, a restart, autoscaling) restores a "
        "schema another has read instead of reading it again. Each schema is written once; the base model's only. "
        "0 keeps them in RAM alone.",
    )
    chat_format: str | None = Field(
        default=None, description="llama-cpp-python chat format; None uses the template inside the GGUF."
    )
    n_gpu_layers: int = Field(
        default=0,
        ge=-1,
        description="Layers offloaded to the GPU (llama.cpp's -ngl); -1 offloads all. Needs a CUDA build of "
        "llama-cpp-python and num_gpus in ray_actor_options.",
    )
    main_gpu: NonNegativeInt = Field(
        default=0, description="GPU for the whole model (one GPU) or for small tensors and scratch (split)."
    )
    tensor_split: list[NonNegativeFloat] | None = Field(
        default=None, description="Share of the model per GPU, e.g. [3, 1] (0 skips a GPU); None splits by free memory."
    )


class VllmSettings(StrictModel):
    backend: Literal["vllm"] = Field(default="vllm", description="vLLM's async engine, Hugging Face models; GPU only.")
    tensor_parallel_size: PositiveInt = Field(
        default=1, description="GPUs one replica shards the model over; give the replica as many num_gpus."
    )
    gpu_memory_utilization: float = Field(
        default=0.9, gt=0, le=1, description="Share of each GPU's memory vLLM takes for weights and KV cache."
    )
    max_model_len: PositiveInt | None = Field(
        default=None, description="Context window in tokens; None uses the model's own."
    )
    dtype: Literal["auto", "half", "float16", "bfloat16", "float", "float32"] = Field(
        default="auto", description="Weight and activation dtype; auto follows the model's config."
    )
    enable_lora: bool = Field(default=False, description="Serve LoRA adapters by name on this base model.")
    max_loras: PositiveInt = Field(default=1, description="LoRA adapters in one batch at once.")
    max_lora_rank: Literal[1, 8, 16, 32, 64, 128, 256, 320, 512] = Field(
        default=16, description="Highest LoRA rank an adapter may have."
    )
    enable_prefix_caching: bool = Field(
        default=True, description="Reuse the KV cache of shared prompt prefixes (a database's schema)."
    )
    max_num_seqs: PositiveInt = Field(
        default=64,
        description="Sequences vLLM batches at once; the engine declares it as its concurrent requests. "
        "Set max_ongoing_requests to match.",
    )


class TransformersSettings(StrictModel):
    backend: Literal["transformers"] = Field(
        default="transformers",
        description="Hugging Face Transformers (PyTorch): an HF model directory or hub id, or a GGUF file it "
        "dequantizes once and caches; install the extra `[transformers]`.",
    )
    torch_dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        default="auto",
        description="Weight dtype: 'auto' keeps the checkpoint's (float32 for a GGUF); bf16 and fp16 halve memory, "
        "fp32 is the fastest on most CPUs.",
    )
    device_map: str | dict[str, int | str] | None = Field(
        default=None,
        description="transformers' device_map: null keeps the model on one device (the CPU), 'auto' spreads it "
        "over the GPUs with accelerate, 'cuda:0' puts it on one.",
    )
    trust_remote_code: bool = Field(
        default=False, description="Run model code shipped inside the checkpoint; only for checkpoints you trust."
    )
    load_in_4bit: bool = Field(
        default=False, description="Quantize the weights to 4 bits (NF4) while loading, with bitsandbytes (CUDA GPU)."
    )
    load_in_8bit: bool = Field(
        default=False,
        description="Quantize the weights to 8 bits (LLM.int8) while loading, with bitsandbytes (CUDA GPU).",
    )
    context_length: PositiveInt | None = Field(
        default=None,
        description="Prompt plus completion tokens; null reads max_position_embeddings from the model's config.",
    )
    max_batch_size: PositiveInt = Field(
        default=4,
        description="Most concurrent requests one generate() call runs together (serve.batch, left-padded); the "
        "engine declares it as its concurrent requests. Set max_ongoing_requests at least this high.",
    )
    batch_wait_timeout_s: float = Field(
        default=0.02, ge=0, le=5, description="How long the first request of a batch waits for others to join it."
    )
    num_threads: PositiveInt | None = Field(default=None, description="torch CPU threads; null uses num_cpus.")

    @model_validator(mode="after")
    def _one_quantization(self) -> TransformersSettings:
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("load_in_4bit and load_in_8bit are both true; choose one")
        return self


class ModelScopeTableQaSettings(StrictModel):
    backend: Literal["modelscope_tableqa"] = Field(
        default="modelscope_tableqa",
        description="ModelScope's table-question-answering pipeline with SPACE-T "
        "(damo/nlp_convai_text2sql_pretrain_cn), on CPU: it answers /v1/sql/generate over a database's tables "
        "with a structured query instead of writing text, and has no chat API; install the extra `[modelscope]`.",
    )
    max_rows_per_table: PositiveInt = Field(
        default=10_000,
        description="Rows read from each table into SPACE-T's table files, where it finds the question's values.",
    )
    table_refresh_s: PositiveFloat = Field(
        default=300.0, description="How long a database's exported tables are used before its rows are read again."
    )
    max_cached_databases: PositiveInt = Field(
        default=8, description="Databases whose table index (tokenized headers, value tries) stays in memory."
    )
    num_threads: PositiveInt | None = Field(default=None, description="torch CPU threads; null uses num_cpus.")
    tables_cache_dir: str | None = Field(
        default=None,
        description="Where SPACE-T's table files are written, one directory per database content; null uses "
        "spacet-tables in the model cache.",
    )


# Each backend adds its settings model here and its engine builder to the registry.
EngineSettings = Annotated[
    Union[LlamaCppSettings, TransformersSettings, VllmSettings, ModelScopeTableQaSettings],  # noqa: UP007
    Field(discriminator="backend"),
]
BACKENDS: tuple[str, ...] = ("llama_cpp", "transformers", "vllm", "modelscope_tableqa")
