"""The one exception -> HTTP mapping: statuses, OpenAI-shaped bodies, sanitised messages."""

from __future__ import annotations

import json

from ray.exceptions import RayTaskError
from ray.serve.exceptions import BackPressureError

from deployments.errors import ModelNotFound, PayloadTooLarge
from deployments.http_errors import exception_to_response
from text2sql.pipeline.engine import EmptyPrompt, EngineError, GenerationTimeout, PromptTooLong


def body(response) -> dict:
    return json.loads(response.body)["error"]


def test_api_errors_keep_status_message_and_param():
    response = exception_to_response(ModelNotFound("model 'x' does not exist; available models: a, b", param="model"))
    assert response.status_code == 404
    assert body(response) == {
        "message": "model 'x' does not exist; available models: a, b",
        "type": "not_found_error",
        "param": "model",
        "code": 404,
    }
    assert exception_to_response(PayloadTooLarge("too big")).status_code == 413


def test_backpressure_is_503_with_retry_after():
    response = exception_to_response(BackPressureError(num_queued_requests=5, max_queued_requests=5, retry_after_s=2.4))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "queue is full" in body(response)["message"]


def test_engine_failure_from_a_replica_is_sanitised():
    try:
        raise EngineError("segfault in /opt/secret/ggml.c with key sk-live-123")
    except EngineError as e:
        wrapped = RayTaskError("generate_sql", "Traceback (most recent call last):\n  File ...", e).as_instanceof_cause()
    response = exception_to_response(wrapped)
    message = body(response)["message"]
    assert response.status_code == 500
    assert "EngineError" in message and "request id" in message
    assert "secret" not in message and "sk-live" not in message and "Traceback" not in message


def test_prompt_too_long_is_a_client_error():
    response = exception_to_response(PromptTooLong("Requested tokens (900) exceed context window of 512; shorten it"))
    assert response.status_code == 400
    assert "context window" in body(response)["message"]


def test_empty_prompt_is_a_client_error():
    response = exception_to_response(EmptyPrompt("the prompt is empty: it has no tokens to continue from"))
    assert response.status_code == 400
    assert body(response)["param"] == "prompt" and "empty" in body(response)["message"]


def test_generation_timeout_from_a_replica_is_504_naming_the_limit():
    message = "the generation took longer than the model's limit of 2 s (generation_timeout_s) and was stopped"
    try:
        raise GenerationTimeout(message)
    except GenerationTimeout as e:
        wrapped = RayTaskError("chat", "Traceback (most recent call last):\n  File ...", e).as_instanceof_cause()
    response = exception_to_response(wrapped)
    assert response.status_code == 504
    assert body(response) == {"message": message, "type": "timeout_error", "param": None, "code": 504}


def test_unexpected_exception_is_a_generic_500():
    response = exception_to_response(KeyError("internal_state"))
    assert response.status_code == 500
    assert "internal_state" not in body(response)["message"]
