"""The disk tier of llama.cpp's prompt-prefix cache: what it stores, what it finds, and that it never writes the
same schema twice (states here are stand-ins: the store does not look inside them)."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_cpp")

from deployments.engines.llama_cpp_prefix_store import PrefixStore  # noqa: E402
from deployments.engines.llama_cpp_prefixes import PrefixCache  # noqa: E402

SHOP = tuple(range(100))  # a schema's prompt prefix
SCHOOL = tuple(range(1000, 1100))


def test_each_schema_is_written_once_and_found_by_its_longest_prefix(tmp_path):
    store = PrefixStore(tmp_path / "s", capacity_bytes=1 << 20)
    assert store.offer(SHOP + (7, 8), {"n": "shop"})
    assert not store.offer(SHOP + (9, 9, 9), {"n": "shop again"})  # the next question on the same schema
    assert store.offer(SCHOOL + (1,), {"n": "school"})
    assert len(store) == 2

    tokens, state = store.longest_prefix(SHOP + (5,), longer_than=0)
    assert tokens == SHOP + (7, 8) and state == {"n": "shop"}
    assert store.longest_prefix(SHOP + (5,), longer_than=100) is None  # RAM already holds as much
    assert store.longest_prefix((42_000, 1), longer_than=0) is None


def test_another_process_sees_what_one_stored(tmp_path):
    PrefixStore(tmp_path / "s", capacity_bytes=1 << 20).offer(SHOP, {"n": "shop"})
    assert PrefixStore(tmp_path / "s", capacity_bytes=1 << 20).longest_prefix(SHOP, longer_than=0)[1] == {"n": "shop"}


class State:
    """What PrefixCache needs of a llama-cpp-python state: its size."""

    def __init__(self, name: str) -> None:
        self.name, self.llama_state_size = name, 10

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and other.name == self.name


def test_the_cache_reads_from_disk_what_ram_lacks_and_writes_new_prefixes_through(tmp_path):
    store = PrefixStore(tmp_path / "s", capacity_bytes=1 << 20)
    writer = PrefixCache(1 << 20, store=store)
    writer[SHOP + (1,)] = State("shop")
    assert len(store) == 1

    reader = PrefixCache(1 << 20, store=store)  # a replica that just started: empty RAM
    assert reader[SHOP + (2, 3)] == State("shop")
    assert SHOP + (1,) in reader.cache_state  # now in its RAM too
    # What RAM holds with a longer prefix wins over the disk.
    reader[SHOP + (2, 3, 4)] = State("newer")
    assert reader[SHOP + (2, 3, 4, 5)] == State("newer")
    # An adapter's cache has no disk tier: its states are computed with other weights.
    assert reader.empty_like().store is None


class CountingStore(PrefixStore):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reads = self.offers = 0

    def longest_prefix(self, *args, **kwargs):
        self.reads += 1
        return super().longest_prefix(*args, **kwargs)

    def offer(self, *args, **kwargs):
        self.offers += 1
        return super().offer(*args, **kwargs)


def test_questions_on_a_schema_ram_holds_never_touch_the_disk(tmp_path):
    store = CountingStore(tmp_path / "s", capacity_bytes=1 << 20)
    cache = PrefixCache(1 << 20, store=store)
    cache[SHOP + (1,)] = State("first")  # a new schema: offered once
    for question in range(2, 6):  # the next questions on it: found in RAM, replacing the entry there
        assert isinstance(cache[SHOP + (question,)], State)
        cache[SHOP + (question, 0)] = State(f"q{question}")
    assert store.reads == 0 and store.offers == 1 and len(store) == 1
    with pytest.raises(KeyError):
        PrefixCache(1 << 20)[SHOP]
