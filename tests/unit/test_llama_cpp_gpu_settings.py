"""llama.cpp's GPU offload settings (the product guide's -ngl, main_gpu, tensor_split) reach `Llama(...)`; checked
on the options the engine keeps for start(), without loading a model."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from deployments.builder import ConfigError, parse_app_config
from deployments.engines.llama_cpp import build


def llama_cpp_options(engine: dict) -> dict:
    config = parse_app_config({"models": [{"name": "m", "source": "/models/m.gguf", "engine": engine}]}).models[0]
    return build(config, Path("/models/m.gguf"))._options  # what start() passes to Llama(...)


def test_llama_cpp_gpu_offload_reaches_llama() -> None:
    options = llama_cpp_options({"n_gpu_layers": -1, "main_gpu": 1, "tensor_split": [3, 1]})
    assert (options["n_gpu_layers"], options["main_gpu"], options["tensor_split"]) == (-1, 1, [3.0, 1.0])


def test_llama_cpp_stays_on_the_cpu_by_default() -> None:
    options = llama_cpp_options({})
    assert (options["n_gpu_layers"], options["main_gpu"], options["tensor_split"]) == (0, 0, None)


def test_llama_cpp_gpu_settings_are_checked() -> None:
    for engine, needle in [({"n_gpu_layers": -2}, "n_gpu_layers"), ({"tensor_split": [1, -1]}, "tensor_split")]:
        with pytest.raises(ConfigError, match=needle):
            llama_cpp_options(engine)


def test_every_option_is_a_llama_parameter() -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    assert set(llama_cpp_options({})) <= set(inspect.signature(llama_cpp.Llama.__init__).parameters)
