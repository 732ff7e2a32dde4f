"""The engine seam: settings discriminated by backend, a registry instead of an if-chain, and capabilities
that the pipeline and the model server ask for instead of a backend's name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deployments.builder import ConfigError, parse_app_config
from deployments.engines.registry import ENGINE_BUILDERS, engine_builder
from deployments.engines.settings import BACKENDS, LlamaCppSettings

MODEL = {"name": "m", "source": "/models/m.gguf"}


def test_backend_beside_engine_selects_the_settings_model() -> None:
    config = parse_app_config({"models": [{**MODEL, "backend": "llama_cpp", "engine": {"n_ctx": 2048}}]}).models[0]
    assert isinstance(config.engine, LlamaCppSettings)
    assert config.engine.backend == config.backend == "llama_cpp" and config.engine.n_ctx == 2048


def test_backend_inside_engine_and_the_default() -> None:
    inside = parse_app_config({"models": [{**MODEL, "engine": {"backend": "llama_cpp"}}]}).models[0]
    default = parse_app_config({"models": [MODEL]}).models[0]
    assert inside.engine.backend == default.engine.backend == "llama_cpp"


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ({**MODEL, "backend": "nope"}, "backend"),
        ({**MODEL, "engine": {"backend": "nope"}}, "nope"),
        ({**MODEL, "engine": {"n_ctx": 2048, "tensor_parallel_size": 2}}, "tensor_parallel_size"),
    ],
)
def test_unknown_backends_and_foreign_settings_are_refused(model: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_app_config({"models": [model]})


def test_every_backend_has_an_engine_and_nothing_else_does() -> None:
    assert set(ENGINE_BUILDERS) == set(BACKENDS)
    assert callable(engine_builder("llama_cpp"))
    with pytest.raises(ValueError, match="llama_cpp"):
        engine_builder("tensorrt")


def test_building_an_engine_says_where_its_time_went(tmp_path: Path) -> None:
    """A replica reports its start split into finding the model files and loading them (the cold-start table)."""
    from deployments.engines.registry import build_engine

    weights = tmp_path / "m.gguf"
    weights.write_bytes(b"GGUF")
    config = parse_app_config({"models": [{**MODEL, "source": str(weights)}]}).models[0]
    timings: dict[str, float] = {}
    engine = build_engine(config, timings=timings)
    assert engine.capabilities.adapters  # the llama.cpp engine, built but not started (no weights read yet)
    assert set(timings) == {"files_s", "load_s"} and all(t >= 0 for t in timings.values())


def test_llama_cpp_declares_its_capabilities(tmp_path: Path) -> None:
    from deployments.engines.llama_cpp import build

    config = parse_app_config({"models": [{**MODEL, "engine": {"n_ctx": 3072}}]}).models[0]
    capabilities = build(config, tmp_path / "m.gguf").capabilities
    assert capabilities.context_length == 3072 and capabilities.grammar and capabilities.adapters
    assert capabilities.max_concurrent_requests == 1


def test_config_and_core_import_without_web_or_model_libraries() -> None:
    # The training CLI and the Kubernetes tooling load configs; the core is shared by all.
    code = (
        "import sys, deployments.config, text2sql.pipeline.generate, text2sql.table_qa;"
        "heavy = [m for m in ('fastapi', 'starlette', 'ray', 'llama_cpp', 'torch', 'modelscope') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert found == ""


def test_the_llama_cpp_server_builds_without_torch() -> None:
    """Torch stays out of the base install: the shipped llama.cpp app is built (config, ingress, model
    deployments, engine module) with torch unimportable."""
    code = (
        "import sys, yaml; sys.modules['torch'] = None;"  # None makes `import torch` fail
        "from deployments.builder import build_app; import deployments.engines.llama_cpp;"
        "args = yaml.safe_load(open('serve_config.yaml'))['applications'][0]['args'];"
        "build_app(args); print('built')"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith("built"), done.stderr[-2000:]
