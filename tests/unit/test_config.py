"""Config validation and deployment options: pure functions of the config, no Ray needed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deployments.builder import ConfigError, parse_app_config
from deployments.ingress import Ingress
from deployments.model_server import ModelServer

ROOT = Path(__file__).resolve().parents[2]


def minimal(**model_overrides) -> dict:
    return {"models": [{"name": "m", "source": "embedded:qwen2.5-coder-0.5b", **model_overrides}]}


def test_serve_config_yaml_is_a_valid_app_config():
    document = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    (application,) = document["applications"]
    assert application["import_path"] == "deployments.builder:build_app"
    config = parse_app_config(application["args"])
    assert config.default_model == "qwen2.5-coder-1.5b"
    assert config.model_names == ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
    # On 2 cores the two 1-CPU models only schedule if the ingress takes none.
    assert config.ingress.num_cpus == 0
    assert sum(m.ray_actor_options.num_cpus for m in config.models) <= 2


def test_cpu_mixed_yaml_serves_one_gguf_on_both_engines_within_two_cores():
    document = yaml.safe_load((ROOT / "configs" / "cpu-mixed.yaml").read_text())
    (application,) = document["applications"]
    assert application["import_path"] == "deployments.builder:build_app"
    config = parse_app_config(application["args"])
    assert config.model_names == ["qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-hf"]
    assert [m.backend for m in config.models] == ["llama_cpp", "transformers"]
    assert {m.source for m in config.models} == {"embedded:qwen2.5-coder-0.5b"}
    assert "chinook" in config.databases
    assert config.ingress.num_cpus == 0
    assert sum(m.ray_actor_options.num_cpus for m in config.models) <= 2
    llama_cpp, transformers = config.models
    # The same context window, so the pipeline fits the same prompts to both.
    assert transformers.engine.context_length == llama_cpp.engine.n_ctx
    # Batches only fill when the replica takes as many requests as a batch holds.
    assert transformers.max_ongoing_requests >= transformers.engine.max_batch_size


def test_defaults_and_default_model_falls_back_to_first():
    config = parse_app_config(minimal())
    model = config.models[0]
    assert config.default_model == "m"
    assert model.backend == "llama_cpp" and model.prompt_template == "qwen-chat"
    assert model.generation.temperature == 0.0
    assert model.max_ongoing_requests == 4  # llama.cpp queues behind its lock
    assert model.max_tokens_limit == 1024 and model.generation.max_tokens <= model.max_tokens_limit
    # A generation stops before the ingress gives up, so the client hears the model's own limit.
    assert model.generation_timeout_s < config.ingress.request_timeout_s


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (minimal(temprature=0.1), "models.0.temprature"),
        (minimal(backend="tensorrt"), "models.0.backend"),
        (minimal(prompt_template="alpaca"), "alpaca"),
        (minimal(source="hf:only-one-part"), "hf:only-one-part"),
        (minimal(autoscaling_config={"min_replicas": 3, "max_replicas": 2}), "min_replicas (3) exceeds max_replicas (2)"),
        (minimal(generation={"max_tokens": 0}), "models.0.generation.max_tokens"),
        (minimal(name="bad name!"), "models.0.name"),
        ({**minimal(), "default_model": "other"}, "'other' is not one of the models"),
        ({"models": [minimal()["models"][0]] * 2}, "repeated: ['m']"),
        ({"models": []}, "models"),
        ({**minimal(), "limits": {"max_question_chars": -1}}, "limits.max_question_chars"),
        (minimal(name="Text2SQLIngress"), "reserved"),
        (minimal(generation={"max_tokens": 2048}), "generation.max_tokens (2048) exceeds max_tokens_limit (1024)"),
        (minimal(max_tokens_limit=64, generation={"max_tokens": 65}), "exceeds max_tokens_limit (64)"),
        (minimal(max_tokens_limit=0), "models.0.max_tokens_limit"),
        (minimal(generation_timeout_s=0), "models.0.generation_timeout_s"),
    ],
)
def test_invalid_args_fail_naming_the_field(args, needle):
    with pytest.raises(ConfigError) as info:
        parse_app_config(args)
    assert needle in str(info.value)


def test_model_deployment_options_follow_the_config():
    config = parse_app_config(
        minimal(
            ray_actor_options={"num_cpus": 2, "num_gpus": 0.5, "memory": 2_000_000_000},
            autoscaling_config={"min_replicas": 0, "max_replicas": 4, "target_ongoing_requests": 2},
            max_ongoing_requests=1,
            max_queued_requests=16,
        )
    ).models[0]
    options = ModelServer.get_deployment_options(config)
    assert options["name"] == "m"
    assert options["ray_actor_options"] == {"num_cpus": 2, "num_gpus": 0.5, "memory": 2_000_000_000}
    assert options["autoscaling_config"]["min_replicas"] == 0
    assert options["autoscaling_config"]["max_replicas"] == 4
    assert options["autoscaling_config"]["target_ongoing_requests"] == 2
    assert "num_replicas" not in options
    assert options["max_ongoing_requests"] == 1 and options["max_queued_requests"] == 16


def test_fixed_replicas_without_autoscaling():
    options = ModelServer.get_deployment_options(parse_app_config(minimal(num_replicas=3)).models[0])
    assert options["num_replicas"] == 3 and "autoscaling_config" not in options


def test_ingress_options_leave_cpus_to_models():
    options = Ingress.get_deployment_options(parse_app_config(minimal()))
    assert options["ray_actor_options"] == {"num_cpus": 0.0}
    assert options["max_ongoing_requests"] >= 100
