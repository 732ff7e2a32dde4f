"""A cancelled or timed-out generation stops, and the replica that ran it lives on (issue 13).

llama.cpp must never run two generations on one model at once: a request that went away used to
release the engine's lock while its worker thread kept generating, and the next request crashed
the replica. Every test here is with the real 0.5B: the engine directly, then over Serve, where a
long generation is cut short by (a) the client leaving and (b) the ingress's timeout, 20 times in
a row, each time followed at once by a request that must get a real answer from the same process.

llama.cpp checks the stop flag after each generated token, not while it reads the prompt, so the
prompts are short and share their start with the follow-ups (its prompt cache keeps rounds quick).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from deployments.builder import build_app
from deployments.engines.llama_cpp import LlamaCppEngine
from deployments.protocol.openai import ChatCompletionRequest, CompletionRequest
from text2sql.pipeline.engine import EmptyPrompt, GenerationRequest, GenerationTimeout, SamplingParams
from text2sql.prompts import ChatMessage

MODEL = "qwen2.5-coder-0.5b"
LIMITED = "qwen-limited"  # the same weights with a 5 s generation time limit
LIMIT_S = 5  # far below a long generation (30 s or more), above a short answer on a busy machine
CAP = 1024  # max_tokens_limit; a generation that ran to it would hold the model for 30 s or more
ROUNDS = 20

# Prompts the 0.5B answers at length, not stopping on its own before CAP tokens, each with a short
# follow-up of the same start.
LONG_CHAT = [{"role": "user", "content": "Count from 1 to 500, one number per line."}]
SHORT_CHAT = [{"role": "user", "content": "Count from 1 to 3, one number per line."}]
LONG_COMPLETION = "-- table t\nSELECT 1;\nSELECT 2;\nSELECT 3;\n"
SHORT_COMPLETION = "-- table t\nSELECT"
# A follow-up that waited for an uncancelled long generation would take far longer than this.
ANSWER_WITHIN_S = 15.0


def model_args(model_path: Path, name: str, *, generation_timeout_s: float) -> dict:
    return {
        "name": name,
        "source": str(model_path),
        "engine": {"n_ctx": 1536, "n_threads": 1},
        "generation": {"max_tokens": 16, "temperature": 0},
        "max_tokens_limit": CAP,
        "generation_timeout_s": generation_timeout_s,
        # Three replicas share the 2 CPUs of the test's Ray.
        "ray_actor_options": {"num_cpus": 0.5},
    }


@pytest.fixture(scope="module")
def apps(ray_serve, embedded_model_path) -> dict[str, str]:
    """"open": the default ingress timeout; "strict": an ingress that gives up after 2 s."""
    open_app = {
        "models": [
            model_args(embedded_model_path, MODEL, generation_timeout_s=60),
            model_args(embedded_model_path, LIMITED, generation_timeout_s=LIMIT_S),
        ],
    }
    # The model's own limit is far longer, so the ingress's timeout is what fires.
    strict_app = {
        "models": [model_args(embedded_model_path, MODEL, generation_timeout_s=60)],
        "ingress": {"request_timeout_s": 2},
    }
    return {
        "open": ray_serve(build_app(open_app), name="open", route_prefix="/open"),
        "strict": ray_serve(build_app(strict_app), name="strict", route_prefix="/strict"),
    }


def replica_pid(app: str, model: str = MODEL) -> int:
    from ray import serve

    return serve.get_deployment_handle(model, app_name=app).stats.remote().result()["pid"]


def is_chat(round_index: int) -> bool:
    # Alternate: the chat path stops through llama-cpp-python's chat handler, completions directly.
    return round_index % 2 == 0


def long_request(round_index: int, *, stream: bool, model: str = MODEL) -> tuple[str, dict]:
    common = {"model": model, "max_tokens": CAP, "temperature": 0, "stream": stream}
    if is_chat(round_index):
        return "/v1/chat/completions", {**common, "messages": LONG_CHAT}
    return "/v1/completions", {**common, "prompt": LONG_COMPLETION}


def short_request(round_index: int, model: str) -> tuple[str, dict]:
    common = {"model": model, "temperature": 0}
    if is_chat(round_index):
        return "/v1/chat/completions", {**common, "messages": SHORT_CHAT, "max_tokens": 12}
    return "/v1/completions", {**common, "prompt": SHORT_COMPLETION, "max_tokens": 4}


def assert_short_answer(round_index: int, text: str) -> None:
    if is_chat(round_index):
        assert ["1", "2", "3"] == [line.strip() for line in text.strip().splitlines()][:3], text
    else:
        assert "from t" in text.lower(), text


def assert_answers_at_once(base_url: str, round_index: int, *, model: str = MODEL) -> None:
    """A short request on the same replica: a real answer, and soon, so the long one really stopped."""
    started = time.monotonic()
    path, body = short_request(round_index, model)
    response = httpx.post(f"{base_url}{path}", json=body, timeout=120)
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert_short_answer(round_index, choice["message"]["content"] if is_chat(round_index) else choice["text"])
    elapsed = time.monotonic() - started
    assert elapsed < ANSWER_WITHIN_S, f"the follow-up took {elapsed:.1f} s: the cancelled generation ran on"


def assert_replica_answers_at_once(app: str, round_index: int) -> None:
    """The same check past the ingress, straight to the replica: the strict app's 2 s would also cut a short
    answer on a busy machine, and what is tested is the replica, not the ingress's patience."""
    from ray import serve

    handle = serve.get_deployment_handle(MODEL, app_name=app)
    started = time.monotonic()
    _, body = short_request(round_index, MODEL)
    if is_chat(round_index):
        answer = handle.chat.remote(ChatCompletionRequest(**body), time.time()).result(timeout_s=120)
        assert_short_answer(round_index, answer.choices[0].message.content)
    else:
        answer = handle.complete.remote(CompletionRequest(**body), time.time()).result(timeout_s=120)
        assert_short_answer(round_index, answer.choices[0].text)
    elapsed = time.monotonic() - started
    assert elapsed < ANSWER_WITHIN_S, f"the follow-up took {elapsed:.1f} s: the cancelled generation ran on"


def sse_events(response: httpx.Response) -> list[dict]:
    return [
        json.loads(line.removeprefix("data: "))
        for line in response.iter_lines()
        if line.startswith("data: ") and line != "data: [DONE]"
    ]


# ---- the engine itself, no Serve --------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(embedded_model_path) -> LlamaCppEngine:
    engine = LlamaCppEngine(embedded_model_path, n_ctx=1536, n_threads=1, generation_timeout_s=60)
    asyncio.run(engine.start())
    return engine


def chat(messages: list[dict], max_tokens: int) -> GenerationRequest:
    return GenerationRequest(
        messages=[ChatMessage(**m) for m in messages], sampling=SamplingParams(max_tokens=max_tokens)
    )


async def drain(engine: LlamaCppEngine, request: GenerationRequest) -> list:
    return [chunk async for chunk in engine.stream(request)]


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
def test_engine_cancel_stops_the_thread_before_letting_go_of_the_model(engine, streamed):
    async def scenario() -> None:
        await engine.generate(chat(LONG_CHAT, 1))  # the prompt is cached: the long run generates at once
        long = chat(LONG_CHAT, CAP)
        task = asyncio.create_task(drain(engine, long) if streamed else engine.generate(long))
        await asyncio.sleep(1.5)
        assert engine._generation_lock.locked()
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The task ended only once its thread had: the model is free and nothing else runs on it.
        assert not engine._generation_lock.locked()
        assert time.monotonic() - cancelled_at < 3.0, "the generation ran on after the cancel"
        followup = await engine.generate(chat(SHORT_CHAT, 12))
        assert followup.text.split() == ["1", "2", "3"], followup.text

    asyncio.run(scenario())


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
def test_engine_time_limit_stops_the_generation(engine, streamed):
    async def scenario() -> None:
        await engine.generate(chat(LONG_CHAT, 1))
        engine._generation_timeout_s = 1  # counted from the start of a generation, prompt included
        started = time.monotonic()
        long = chat(LONG_CHAT, CAP)
        with pytest.raises(GenerationTimeout, match=r"limit of 1 s \(generation_timeout_s\)"):
            await (drain(engine, long) if streamed else engine.generate(long))
        assert time.monotonic() - started < 4.0
        assert not engine._generation_lock.locked()

    try:
        asyncio.run(scenario())
    finally:
        engine._generation_timeout_s = 60


def test_engine_refuses_a_prompt_without_tokens(engine):
    with pytest.raises(EmptyPrompt, match="empty"):
        asyncio.run(engine.generate(GenerationRequest(prompt="", sampling=SamplingParams(max_tokens=4))))
    output = asyncio.run(engine.generate(GenerationRequest(prompt=SHORT_COMPLETION, sampling=SamplingParams(max_tokens=4))))
    assert output.completion_tokens > 0


# ---- over Serve: (a) the client leaves ---------------------------------------------------------


def test_client_disconnect_stops_a_plain_generation(apps):
    base_url = apps["open"]
    pid = replica_pid("open")
    for round_index in range(ROUNDS):
        path, body = long_request(round_index, stream=False)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base_url}{path}", json=body, timeout=httpx.Timeout(60, read=1.5))
        assert_answers_at_once(base_url, round_index)
        assert replica_pid("open") == pid, f"the replica was replaced in round {round_index}"


def test_client_disconnect_stops_a_streamed_generation(apps):
    base_url = apps["open"]
    pid = replica_pid("open")
    for round_index in range(ROUNDS):
        path, body = long_request(round_index, stream=True)
        with httpx.stream("POST", f"{base_url}{path}", json=body, timeout=60) as response:
            assert response.status_code == 200
            pieces = 0
            for line in response.iter_lines():
                pieces += line.startswith("data: ")
                if pieces >= 4:
                    break  # leave mid-generation: the connection closes with the stream
        assert_answers_at_once(base_url, round_index)
        assert replica_pid("open") == pid, f"the replica was replaced in round {round_index}"


# ---- over Serve: (b) the ingress gives up ------------------------------------------------------


def test_ingress_timeout_stops_a_plain_generation(apps):
    base_url = apps["strict"]
    pid = replica_pid("strict")
    for round_index in range(ROUNDS):
        path, body = long_request(round_index, stream=False)
        response = httpx.post(f"{base_url}{path}", json=body, timeout=60)
        assert response.status_code == 504, response.text
        assert "did not answer within 2 s" in response.json()["error"]["message"]
        assert_replica_answers_at_once("strict", round_index)
        assert replica_pid("strict") == pid, f"the replica was replaced in round {round_index}"


def test_ingress_timeout_stops_a_streamed_generation(apps):
    base_url = apps["strict"]
    pid = replica_pid("strict")
    for round_index in range(ROUNDS):
        path, body = long_request(round_index, stream=True)
        with httpx.stream("POST", f"{base_url}{path}", json=body, timeout=60) as response:
            events = sse_events(response)
        # The whole stream has the ingress's 2 s: text first, then the timeout in-band (the 200 was
        # already sent) and [DONE]. A completion whose first token came too late is a plain 504.
        if response.status_code == 200:
            assert events[-1]["error"]["code"] == 504, events[-1]
            assert "did not answer within 2 s" in events[-1]["error"]["message"]
        else:
            assert response.status_code == 504 and not is_chat(round_index)
        assert_replica_answers_at_once("strict", round_index)
        assert replica_pid("strict") == pid, f"the replica was replaced in round {round_index}"


# ---- limits --------------------------------------------------------------------------------------


def test_generation_time_limit_is_a_504_naming_it_and_the_replica_lives_on(apps):
    base_url = apps["open"]
    pid = replica_pid("open", LIMITED)
    for round_index in range(2):
        path, body = long_request(round_index, stream=False, model=LIMITED)
        response = httpx.post(f"{base_url}{path}", json=body, timeout=120)
        assert response.status_code == 504, response.text
        error = response.json()["error"]
        assert error["type"] == "timeout_error"
        assert f"limit of {LIMIT_S} s (generation_timeout_s)" in error["message"], error
        assert_answers_at_once(base_url, round_index, model=LIMITED)
    path, body = long_request(0, stream=True, model=LIMITED)
    with httpx.stream("POST", f"{base_url}{path}", json=body, timeout=120) as response:
        assert response.status_code == 200
        events = sse_events(response)
    assert events[-1]["error"]["code"] == 504 and "generation_timeout_s" in events[-1]["error"]["message"]
    assert replica_pid("open", LIMITED) == pid


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat/completions", {"messages": SHORT_CHAT, "max_tokens": CAP + 1}, "max_tokens"),
        ("/v1/chat/completions", {"messages": SHORT_CHAT, "max_completion_tokens": 100_000}, "max_completion_tokens"),
        ("/v1/chat/completions", {"messages": SHORT_CHAT, "max_completion_tokens": CAP + 1, "stream": True}, "max_completion_tokens"),
        ("/v1/completions", {"prompt": "SELECT", "max_tokens": CAP + 1}, "max_tokens"),
        ("/v1/completions", {"prompt": "SELECT", "max_tokens": CAP + 1, "stream": True}, "max_tokens"),
        ("/v1/sql/generate", {"question": "How many rows?", "schema": "CREATE TABLE t (a INT);", "max_tokens": CAP + 1}, "max_tokens"),
    ],
)
def test_max_tokens_over_the_cap_is_a_400_naming_it(apps, path, body, field):
    response = httpx.post(f"{apps['open']}{path}", json={**body, "model": MODEL}, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field
    assert f"{field} is" in error["message"] and f"limit of {CAP}" in error["message"], error
    assert "max_tokens_limit" in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/completions", {"prompt": ""}, "prompt"),
        ("/v1/completions", {"prompt": " \n\t "}, "prompt"),
        ("/v1/completions", {"prompt": "", "stream": True}, "prompt"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": ""}]}, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "system", "content": " "}, {"role": "user", "content": "\n"}]}, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "  "}], "stream": True}, "messages"),
    ],
)
def test_empty_prompt_is_a_400_saying_so(apps, path, body, field):
    response = httpx.post(f"{apps['open']}{path}", json={**body, "model": MODEL}, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field and "empty" in error["message"]


# ---- health while the model is busy -------------------------------------------------------------


def test_health_answers_at_once_while_the_model_is_busy(apps):
    """/health reads the background monitor's state: a long generation on the replica does not slow it (a
    Kubernetes probe with a short timeout must not flap under load)."""
    base_url = apps["open"]
    path, body = long_request(0, stream=True)
    with httpx.stream("POST", f"{base_url}{path}", json=body, timeout=120) as response:
        next(response.iter_lines())  # generating now
        timings = []
        for _ in range(10):
            started = time.perf_counter()
            health = httpx.get(f"{base_url}/health", timeout=5)
            timings.append(time.perf_counter() - started)
            assert health.status_code == 200, health.text
            assert health.json()["running_replicas"][MODEL] == 1
            time.sleep(0.2)
    timings.sort()
    # A /health that waited on the model would take as long as the generation (30 s or more); the bounds
    # leave room for a machine that another test keeps busy.
    assert timings[len(timings) // 2] < 0.5 and timings[-1] < 2.0, f"/health took {timings} s while the model worked"
    assert_answers_at_once(base_url, 0)
