"""s3:// model sources against a real S3 HTTP server on localhost (moto's), through boto3 as in production."""

from __future__ import annotations

import socket

import pytest

from deployments.model_source import ModelSource, ModelSourceError, parse_model_source, resolve_model_path

boto3 = pytest.importorskip("boto3", reason="boto3 is in the s3 extra")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the dev extra")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    yield f"http://127.0.0.1:{server._port}"
    server.stop()


@pytest.fixture()
def bucket(s3_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3")
    client.create_bucket(Bucket="models")
    client.put_object(Bucket="models", Key="gguf/tiny.gguf", Body=b"GGUF" + b"\x00" * 1000)
    client.put_object(Bucket="models", Key="hf/tiny-model/config.json", Body=b'{"model_type": "llama"}')
    client.put_object(Bucket="models", Key="hf/tiny-model/tokenizer/vocab.txt", Body=b"a\nb\n")
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="models"):
        for item in page.get("Contents", []):
            client.delete_object(Bucket="models", Key=item["Key"])
    client.delete_bucket(Bucket="models")


def test_parse_s3_sources():
    assert parse_model_source("s3://models/gguf/tiny.gguf") == ModelSource("s3", "models", "gguf/tiny.gguf")
    assert str(parse_model_source("s3://models/hf/tiny-model/")) == "s3://models/hf/tiny-model"
    for bad in ("s3://", "s3://models", "s3://models/", "s3:///key"):
        with pytest.raises(ValueError, match="s3://<bucket>/<key or prefix>"):
            parse_model_source(bad)


def test_one_object_is_fetched_into_the_cache_once(bucket, tmp_path):
    path = resolve_model_path(parse_model_source("s3://models/gguf/tiny.gguf"), cache_dir=tmp_path)
    assert path == tmp_path / "s3" / "models" / "gguf" / "tiny.gguf"
    assert path.read_bytes() == b"GGUF" + b"\x00" * 1000
    assert not list(path.parent.glob("*.partial"))
    mtime = path.stat().st_mtime_ns
    assert resolve_model_path(parse_model_source("s3://models/gguf/tiny.gguf"), cache_dir=tmp_path) == path
    assert path.stat().st_mtime_ns == mtime  # same size: not fetched again


def test_a_changed_object_is_fetched_again(bucket, tmp_path):
    source = parse_model_source("s3://models/gguf/tiny.gguf")
    resolve_model_path(source, cache_dir=tmp_path)
    bucket.put_object(Bucket="models", Key="gguf/tiny.gguf", Body=b"GGUF v2")
    assert resolve_model_path(source, cache_dir=tmp_path).read_bytes() == b"GGUF v2"


def test_a_prefix_is_fetched_as_a_directory_with_its_layout(bucket, tmp_path):
    path = resolve_model_path(parse_model_source("s3://models/hf/tiny-model"), cache_dir=tmp_path)
    assert path.is_dir()
    assert (path / "config.json").read_text() == '{"model_type": "llama"}'
    assert (path / "tokenizer" / "vocab.txt").read_text() == "a\nb\n"


def test_a_missing_key_names_it(bucket, tmp_path):
    with pytest.raises(ModelSourceError, match="s3://models/nothing/here is neither an object nor a prefix"):
        resolve_model_path(parse_model_source("s3://models/nothing/here"), cache_dir=tmp_path)


def test_a_missing_bucket_says_what_to_check(bucket, tmp_path):
    with pytest.raises(ModelSourceError) as info:
        resolve_model_path(parse_model_source("s3://no-such-bucket/m.gguf"), cache_dir=tmp_path)
    assert "cannot fetch s3://no-such-bucket/m.gguf" in str(info.value)
    assert "AWS_ENDPOINT_URL" in str(info.value)


def test_unreachable_store_gives_the_copy_command(monkeypatch, tmp_path):
    # Nothing listens on this port: the same failure as an offline cluster.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(ModelSourceError) as info:
        resolve_model_path(parse_model_source("s3://models/sqlcoder/sqlcoder-7b-q5.gguf"), cache_dir=tmp_path)
    message = str(info.value)
    assert "EndpointConnectionError" in message
    assert "aws s3 cp s3://models/sqlcoder/sqlcoder-7b-q5.gguf /models/sqlcoder-7b-q5.gguf" in message
    assert "'/models/sqlcoder-7b-q5.gguf'" in message
    # Nothing partial is left behind (the lock file stays, as file locks do).
    assert [p.name for p in tmp_path.rglob("*.gguf*")] == ["sqlcoder-7b-q5.gguf.lock"]


def test_an_adapter_registered_from_s3_is_fetched_and_loaded(bucket, tmp_path, monkeypatch):
    import asyncio

    from deployments.adapters.catalog import AdapterCatalog, AdapterSpec
    from deployments.adapters.replica import ReplicaAdapters
    from tests.fakes import FakeAdapterEngine

    monkeypatch.setenv("TEXT2SQL_MODEL_CACHE", str(tmp_path))
    bucket.put_object(Bucket="models", Key="adapters/sales/adapter_config.json", Body=b'{"peft_type": "LORA"}')
    bucket.put_object(Bucket="models", Key="adapters/sales/adapter_model.safetensors", Body=b"\x00" * 64)
    adapter = AdapterCatalog({"base": "qwen-chat"}).register(
        AdapterSpec(name="sales", base="base", path="s3://models/adapters/sales")
    )
    engine = FakeAdapterEngine()
    # Without Serve's multiplexing wrapper: every ensure loads, which is what a first request does.
    replica = ReplicaAdapters(engine, max_loaded=1, multiplexed=lambda load: load)
    asyncio.run(replica.ensure(adapter))
    fetched = tmp_path / "s3" / "models" / "adapters" / "sales"
    assert engine.adapters["base:sales"] == str(fetched) and (fetched / "adapter_config.json").is_file()
