"""Benchmarks measure their settings in turns (A, B, A, B, ...), and report medians."""

from bench.turns import in_turns, medians


def test_settings_take_turns_and_each_key_gets_its_median():
    calls: list[str] = []

    def measure(setting: str) -> dict:
        calls.append(setting)
        return {"seconds": float(len(calls)), "first": 10.0 * len(calls)}

    runs = in_turns(["a", "b"], 3, measure)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert medians(runs) == {"a": {"seconds": 3.0, "first": 30.0}, "b": {"seconds": 4.0, "first": 40.0}}
