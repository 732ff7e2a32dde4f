"""Model sources: parsing, and hub sources that fail offline with an actionable message."""

from __future__ import annotations

import pytest

from deployments.model_source import ModelSource, ModelSourceError, parse_model_source, resolve_model_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("embedded:qwen2.5-coder-0.5b", ModelSource("embedded", "qwen2.5-coder-0.5b")),
        ("/models/x.gguf", ModelSource("local", "/models/x.gguf")),
        ("models/sqlcoder", ModelSource("local", "models/sqlcoder")),
        ("hf:Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/q8.gguf", ModelSource("hf", "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "q8.gguf")),
        ("hf:defog/llama-3-sqlcoder-8b", ModelSource("hf", "defog/llama-3-sqlcoder-8b")),
        ("modelscope:XGenerationLab/XiYanSQL-QwenCoder-7B-2504", ModelSource("modelscope", "XGenerationLab/XiYanSQL-QwenCoder-7B-2504")),
    ],
)
def test_parse(text, expected):
    assert parse_model_source(text) == expected
    assert str(parse_model_source(text)) == text


@pytest.mark.parametrize("text", ["", "  ", "hf:", "hf:no-owner", "modelscope:a//b"])
def test_parse_rejects_with_the_value(text):
    with pytest.raises(ValueError):
        parse_model_source(text)


def test_missing_local_path():
    with pytest.raises(ModelSourceError, match="does not exist"):
        resolve_model_path(parse_model_source("/nowhere/model.gguf"))


def test_a_relative_path_is_found_wherever_the_app_was_started(monkeypatch, tmp_path):
    """Ray starts replicas in a directory of its own; the shipped adapter's relative path must still resolve."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    (home / "adapters" / "mine").mkdir(parents=True)
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("TEXT2SQL_HOME", str(home))
    assert resolve_model_path(parse_model_source("adapters/mine")) == (home / "adapters" / "mine").resolve()
    # Without TEXT2SQL_HOME, from any directory: the checkout's own adapters/ (serve_config.yaml's adapter).
    monkeypatch.delenv("TEXT2SQL_HOME")
    shipped = resolve_model_path(parse_model_source("adapters/spider-qwen0.5b"))
    assert (shipped / "adapter_config.json").exists()
    with pytest.raises(ModelSourceError, match="looked for") as info:
        resolve_model_path(parse_model_source("adapters/nowhere"))
    assert str(elsewhere / "adapters" / "nowhere") in str(info.value)


def test_hugging_face_offline_says_what_to_download_and_where(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # this machine has no route to the hub anyway
    source = parse_model_source("hf:Qwen/Qwen2.5-Coder-7B-Instruct-GGUF/qwen2.5-coder-7b-instruct-q4_k_m.gguf")
    with pytest.raises(ModelSourceError) as info:
        resolve_model_path(source, cache_dir=tmp_path)
    message = str(info.value)
    assert "huggingface-cli download Qwen/Qwen2.5-Coder-7B-Instruct-GGUF qwen2.5-coder-7b-instruct-q4_k_m.gguf" in message
    assert "--local-dir /models/Qwen2.5-Coder-7B-Instruct-GGUF" in message
    assert "/models/Qwen2.5-Coder-7B-Instruct-GGUF/qwen2.5-coder-7b-instruct-q4_k_m.gguf" in message


def test_modelscope_without_client_or_offline_is_actionable(tmp_path):
    with pytest.raises(ModelSourceError) as info:
        resolve_model_path(parse_model_source("modelscope:XGenerationLab/XiYanSQL-QwenCoder-7B-2504"), cache_dir=tmp_path)
    message = str(info.value)
    assert "modelscope" in message
    assert "pip install 'text2sql-serve[modelscope]'" in message or "modelscope download --model" in message
