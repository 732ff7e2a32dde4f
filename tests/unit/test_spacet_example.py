"""serve_config.yaml's commented SPACE-T example stays a valid app when uncommented."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from deployments.builder import parse_app_config
from deployments.engines.settings import ModelScopeTableQaSettings

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "# --- BEGIN SPACE-T example", "# --- END SPACE-T example"


def serve_config_with_spacet() -> str:
    """serve_config.yaml with the SPACE-T block uncommented, as a user would."""
    lines = (ROOT / "serve_config.yaml").read_text().splitlines()
    begin = next(i for i, line in enumerate(lines) if line.strip().startswith(BEGIN))
    end = next(i for i, line in enumerate(lines) if line.strip().startswith(END))
    block = [re.sub(r"^(\s*)# ?", r"\1", line) for line in lines[begin + 1 : end]]
    return "\n".join([*lines[:begin], *block, *lines[end + 1 :]]) + "\n"


def test_the_spacet_example_uncommented_is_a_valid_app() -> None:
    (application,) = yaml.safe_load(serve_config_with_spacet())["applications"]
    config = parse_app_config(application["args"])
    spacet = next(m for m in config.models if m.name == "spacet-cn")
    assert spacet.source == "modelscope:damo/nlp_convai_text2sql_pretrain_cn"
    assert spacet.backend == "modelscope_tableqa" and isinstance(spacet.engine, ModelScopeTableQaSettings)
    assert spacet.ray_actor_options.num_cpus == 1 and spacet.ray_actor_options.num_gpus == 0
    assert "spacet-cn" not in parse_app_config(yaml.safe_load((ROOT / "serve_config.yaml").read_text())["applications"][0]["args"]).model_names
