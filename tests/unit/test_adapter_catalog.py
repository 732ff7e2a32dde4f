"""The adapter catalogue: names, bases, templates, and what each replica keeps loaded. No Ray here; the served
behaviour (multiplexed routing, the admin API) is in tests/serve/test_adapter_serving.py."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import pytest

from deployments.adapters.catalog import AdapterCatalog, AdapterSpec
from deployments.adapters.replica import ReplicaAdapters
from deployments.builder import ConfigError, parse_app_config
from deployments.errors import AdapterConflict, ModelNotFound
from tests.fakes import FakeAdapterEngine

BASES = {"qwen": "qwen-chat", "sqlcoder": "sqlcoder-llama3"}


def spec(name: str = "sales", base: str = "qwen", path: str = "/adapters/sales", **extra) -> AdapterSpec:
    return AdapterSpec(name=name, base=base, path=path, **extra)


def test_an_adapter_is_served_as_base_colon_name_and_as_its_own_name():
    catalog = AdapterCatalog(BASES)
    registered = catalog.register(spec())
    assert registered.model_id == "qwen:sales"
    assert registered.prompt_template == "qwen-chat"  # the base model's, when the spec names none
    assert catalog.resolve("qwen:sales") == registered
    assert catalog.resolve("sales") == registered
    assert catalog.resolve("sqlcoder:sales") is None  # the adapter is not on that base
    assert catalog.resolve("qwen") is None


def test_a_template_other_than_the_bases_is_a_conflict():
    catalog = AdapterCatalog(BASES)
    with pytest.raises(AdapterConflict, match="sqlcoder-llama3.*qwen-chat") as raised:
        catalog.register(spec(prompt_template="sqlcoder-llama3"))
    assert raised.value.status_code == 409
    assert catalog.listing() == []


def test_names_are_unique_and_never_a_models_name():
    catalog = AdapterCatalog(BASES)
    catalog.register(spec())
    with pytest.raises(AdapterConflict, match="already registered"):
        catalog.register(spec(base="sqlcoder", prompt_template="sqlcoder-llama3"))
    with pytest.raises(AdapterConflict, match="served model's name"):
        catalog.register(spec(name="sqlcoder"))


def test_unknown_base_and_unknown_adapter_are_404():
    catalog = AdapterCatalog(BASES)
    with pytest.raises(ModelNotFound, match="base model 'llama' is not served"):
        catalog.register(spec(base="llama"))
    with pytest.raises(ModelNotFound, match="no adapter named 'ghost'"):
        catalog.remove("ghost")


def test_every_registration_is_a_new_revision_and_revisions_are_per_base():
    catalog = AdapterCatalog(BASES)
    first = catalog.register(spec())
    catalog.register(spec(name="hr", base="sqlcoder", prompt_template="sqlcoder-llama3"))
    assert catalog.revisions("qwen") == {"qwen:sales": first.revision}
    catalog.remove("qwen:sales")
    second = catalog.register(spec())
    assert second.revision != first.revision
    assert set(catalog.revisions("sqlcoder")) == {"sqlcoder:hr"}


@pytest.mark.parametrize(
    ("adapters", "message"),
    [
        ([{"name": "a", "base": "nope", "path": "/x"}], "base model 'nope' is not served"),
        ([{"name": "a", "base": "m", "path": "/x", "prompt_template": "xiyan"}], "prompt template 'xiyan'"),
        ([{"name": "a", "base": "m", "path": "embedded:qwen2.5-coder-0.5b"}], "not an embedded model"),
        ([{"name": "a:b", "base": "m", "path": "/x"}], "adapters.0.name"),
    ],
)
def test_config_adapters_are_checked_when_the_app_is_built(adapters, message):
    args = {"models": [{"name": "m", "source": "/models/m.gguf"}], "adapters": adapters}
    with pytest.raises(ConfigError, match=message):
        parse_app_config(args)


class ServeLikeLru:
    """What `serve.multiplexed` does with a loader: keep at most `size`, awaiting the evicted one's `__del__`."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, load):
        models: OrderedDict = OrderedDict()

        async def get(model_id: str):
            if model_id in models:
                models.move_to_end(model_id)
                return models[model_id]
            if len(models) >= self.size:
                _, evicted = models.popitem(last=False)
                await evicted.__del__()
            models[model_id] = await load(model_id)
            return models[model_id]

        return get


def adapter_dir(tmp_path, name: str) -> str:
    path = tmp_path / name
    path.mkdir()
    (path / "adapter_config.json").write_text("{}")
    return str(path)


def test_a_replica_loads_once_evicts_the_least_recent_and_drops_what_the_catalogue_no_longer_lists(tmp_path):
    async def scenario():
        engine = FakeAdapterEngine()
        replica = ReplicaAdapters(engine, max_loaded=2, multiplexed=ServeLikeLru(2))
        catalog = AdapterCatalog(BASES)
        a, b, c = (catalog.register(spec(name=n, path=adapter_dir(tmp_path, n))) for n in ("a", "b", "c"))
        await replica.ensure(a)
        await replica.ensure(a)
        await replica.ensure(b)
        assert sorted(engine.adapters) == ["qwen:a", "qwen:b"]
        await replica.ensure(c)  # evicts a, the least recently used
        assert sorted(engine.adapters) == ["qwen:b", "qwen:c"]
        assert replica.loaded() == ["qwen:b", "qwen:c"]

        catalog.remove("b")
        assert await replica.sync(catalog.revisions("qwen")) == ["qwen:b"]
        assert sorted(engine.adapters) == ["qwen:c"]

        # Registered again under the same name: the replica notices the new revision and reloads it.
        catalog.remove("c")
        new_dir = adapter_dir(tmp_path, "c2")
        c2 = catalog.register(spec(name="c", path=new_dir))
        loaded = await replica.ensure(c2)
        assert loaded.adapter.revision == c2.revision and not loaded.unloaded
        assert engine.adapters["qwen:c"] == new_dir

    asyncio.run(scenario())
