"""serve_config.yaml's commented GPU examples (vLLM, one GPU per replica) stay a valid app when uncommented."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from deployments.builder import parse_app_config
from deployments.model_server import ModelServer

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "# --- BEGIN GPU examples", "# --- END GPU examples"


def serve_config_with_gpu_examples() -> str:
    """serve_config.yaml with the marked example block uncommented, as a user would."""
    lines = (ROOT / "serve_config.yaml").read_text().splitlines()
    begin = next(i for i, line in enumerate(lines) if line.strip().startswith(BEGIN))
    end = next(i for i, line in enumerate(lines) if line.strip().startswith(END))
    block = [re.sub(r"^(\s*)# ?", r"\1", line) for line in lines[begin + 1 : end]]
    return "\n".join([*lines[:begin], *block, *lines[end + 1 :]]) + "\n"


def app_args(text: str) -> dict:
    (application,) = yaml.safe_load(text)["applications"]
    return application["args"]


def test_the_gpu_examples_are_commented_out_by_default() -> None:
    config = parse_app_config(app_args((ROOT / "serve_config.yaml").read_text()))
    assert config.model_names == ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]


def test_the_gpu_examples_uncommented_are_a_valid_app() -> None:
    config = parse_app_config(app_args(serve_config_with_gpu_examples()))
    assert config.default_model == "qwen2.5-coder-1.5b"
    xiyan, sqlcoder = config.models[2:]
    assert (xiyan.name, xiyan.source, xiyan.prompt_template) == (
        "xiyan-7b",
        "hf:XGenerationLab/XiYanSQL-QwenCoder-7B-2502",
        "xiyan",
    )
    assert (sqlcoder.name, sqlcoder.source, sqlcoder.prompt_template) == (
        "sqlcoder-8b",
        "hf:defog/llama-3-sqlcoder-8b",
        "sqlcoder-llama3",
    )
    for model in (xiyan, sqlcoder):
        assert model.backend == model.engine.backend == "vllm"
        assert model.ray_actor_options.num_gpus == 1 and model.ray_actor_options.accelerator_type
        assert model.autoscaling_config is not None and model.autoscaling_config.max_replicas > 1
        # Serve lets a replica hold as many requests as vLLM batches.
        assert model.max_ongoing_requests == model.engine.max_num_seqs
    assert xiyan.constrained_decoding and sqlcoder.engine.enable_lora


def test_accelerator_type_reaches_the_deployment_options() -> None:
    sqlcoder = parse_app_config(app_args(serve_config_with_gpu_examples())).models[3]
    options = ModelServer.get_deployment_options(sqlcoder)
    assert options["ray_actor_options"] == {"num_cpus": 2, "num_gpus": 1, "accelerator_type": "L4"}
    assert options["autoscaling_config"]["target_ongoing_requests"] == 16
