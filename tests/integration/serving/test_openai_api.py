"""The OpenAI API of ``kubellm serve``, driven by the official ``openai`` client."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.integration.serving.conftest import Server

PROMPTS = [
    "Question: How do I deploy a model? Answer:",
    "Question: Why was my release refused? Answer:",
    "Question: How do I roll back? Answer:",
    "A much longer question about the candidate alias, the production alias and the load test:",
    "Hi",
    "Question: What does the candidate alias mean? Answer:",
    "Question: How many replicas will I get? Answer:",
    "Question: Where are the metrics?",
]


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0, timeout=60)


def _complete(client: openai.OpenAI, prompt: str, **kw: object) -> openai.types.Completion:
    return client.completions.create(model="tiny", prompt=prompt, **kw)  # type: ignore[call-overload]


def test_models_lists_the_served_name(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["tiny"]


def test_completion_returns_text_and_usage(client: openai.OpenAI) -> None:
    r = _complete(client, PROMPTS[0], max_tokens=12, temperature=0)
    assert r.object == "text_completion" and r.model == "tiny"
    choice = r.choices[0]
    assert choice.finish_reason in ("length", "stop") and isinstance(choice.text, str)
    assert r.usage is not None
    assert r.usage.prompt_tokens > 0 and 0 < r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_completion_default_max_tokens_is_openais_16(client: openai.OpenAI) -> None:
    r = _complete(client, PROMPTS[1], temperature=0)
    assert r.usage is not None and r.usage.completion_tokens <= 16


def test_chat_uses_the_tokenizers_template(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        max_tokens=10,
        temperature=0,
    )
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.usage is not None and r.usage.completion_tokens <= 10
    # "System: Be brief.\nUser: Hi\nAssistant:" is more than the two contents alone
    assert r.usage.prompt_tokens > 4


def test_streaming_completion_matches_the_non_streamed_text(client: openai.OpenAI) -> None:
    whole = _complete(client, PROMPTS[2], max_tokens=20, temperature=0).choices[0].text
    chunks = list(
        client.completions.create(
            model="tiny", prompt=PROMPTS[2], max_tokens=20, temperature=0, stream=True
        )
    )
    assert "".join(c.choices[0].text for c in chunks) == whole
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")


def test_streaming_chat_sends_role_deltas_and_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "How do I roll back?"}],
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("length", "stop")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 8


def test_raw_stream_ends_with_done(server: Server) -> None:
    body = {"model": "tiny", "prompt": "Hi", "max_tokens": 3, "stream": True}
    with httpx.stream("POST", server.v1 + "/completions", json=body, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


def test_stop_sequence_cuts_the_output_before_it(client: openai.OpenAI) -> None:
    full = _complete(client, PROMPTS[0], max_tokens=30, temperature=0).choices[0].text
    assert len(full) >= 6, full
    stop = full[3:6]
    expected = full[: full.index(stop)]
    r = _complete(client, PROMPTS[0], max_tokens=30, temperature=0, stop=[stop])
    assert r.choices[0].text == expected
    assert r.choices[0].finish_reason == "stop"
    streamed = client.completions.create(
        model="tiny", prompt=PROMPTS[0], max_tokens=30, temperature=0, stop=stop, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == expected


def test_temperature_zero_is_identical_batched_and_alone(client: openai.OpenAI) -> None:
    alone = [_complete(client, p, max_tokens=24, temperature=0).choices[0].text for p in PROMPTS]
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        batched = list(
            pool.map(
                lambda p: _complete(client, p, max_tokens=24, temperature=0).choices[0].text,
                PROMPTS,
            )
        )
    assert batched == alone


def test_seeded_sampling_is_reproducible_batched_and_alone(client: openai.OpenAI) -> None:
    def run(p: str) -> str:
        return _complete(client, p, max_tokens=16, temperature=1.0, seed=42).choices[0].text

    alone = run(PROMPTS[3])
    with ThreadPoolExecutor(4) as pool:
        batched = list(pool.map(run, [PROMPTS[3], PROMPTS[0], PROMPTS[4], PROMPTS[3]]))
    assert batched[0] == alone and batched[3] == alone


# ------------------------------------------------------------------------- bad input
def test_invalid_json_is_a_400(server: Server) -> None:
    r = httpx.post(
        server.v1 + "/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert "JSON" in r.json()["error"]["message"]


def test_invalid_field_is_a_400_naming_the_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        _complete(client, "Hi", temperature=7)
    assert info.value.body["param"] == "temperature"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tiny", messages=[{"role": "robot", "content": "x"}])  # type: ignore[list-item]
    assert "messages" in info.value.body["param"]  # type: ignore[index]


def test_prompt_over_the_configured_limit_is_a_400_stating_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        _complete(client, "alias production " * 150, max_tokens=4)
    assert "limit is 200 prompt tokens" in info.value.message


def test_max_tokens_above_the_cap_is_a_400_stating_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        _complete(client, "Hi", max_tokens=129)
    assert "limit of 128" in info.value.message
    assert info.value.body["param"] == "max_tokens"  # type: ignore[index]


def test_max_tokens_beyond_the_context_is_clamped(client: openai.OpenAI) -> None:
    long_prompt = "alias " * 180
    r = _complete(client, long_prompt, max_tokens=128, temperature=0)
    assert r.usage is not None
    assert r.usage.prompt_tokens + r.usage.completion_tokens <= 256


def test_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.completions.create(model="gpt-4", prompt="Hi")
    assert "tiny" in info.value.message


def test_unknown_route_is_a_404_json(server: Server) -> None:
    r = httpx.get(server.v1 + "/embeddings")
    assert r.status_code == 404 and "error" in r.json()


def test_client_gone_mid_stream_leaves_the_batch(server: Server, client: openai.OpenAI) -> None:
    def generated() -> float:
        text = httpx.get(server.base_url + "/metrics").text
        return float(re.search(r"^kubellm_generation_tokens_total (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]

    before = generated()
    body = {"model": "tiny", "prompt": "Hi", "max_tokens": 128, "stream": True, "stop": ["zzzz"]}
    with httpx.stream("POST", server.v1 + "/completions", json=body, timeout=30) as r:
        next(r.iter_lines())
    time.sleep(0.5)
    dropped_after = generated() - before
    print("tokens generated for the dropped stream:", dropped_after)
    assert dropped_after < 100
    # other requests are undisturbed
    r2 = _complete(client, "Hi", max_tokens=5, temperature=0)
    assert r2.usage is not None and r2.usage.completion_tokens <= 5


def test_metrics_count_requests_by_status_and_expose_inflight(
    server: Server, client: openai.OpenAI
) -> None:
    _complete(client, "Hi", max_tokens=3)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="nope", prompt="Hi")
    text = httpx.get(server.base_url + "/metrics").text
    assert re.search(r'kubellm_requests_total\{route="/v1/completions",status="200"\} [1-9]', text)
    assert re.search(r'kubellm_requests_total\{route="/v1/completions",status="404"\} [1-9]', text)
    for name in (
        "kubellm_request_duration_seconds_bucket",
        "kubellm_time_to_first_token_seconds_bucket",
        "kubellm_inter_token_latency_seconds_bucket",
        "kubellm_prompt_tokens_total",
        "kubellm_generation_tokens_total",
        "kubellm_running_batch_size",
        "kubellm_queue_depth",
        "kubellm_inflight_requests",
    ):
        assert name in text, name
    assert re.search(r"^kubellm_inflight_requests 0\.0$", text, re.M)


def test_health_endpoints_report_a_ready_model(server: Server) -> None:
    assert httpx.get(server.base_url + "/healthz").json()["status"] == "alive"
    assert httpx.get(server.base_url + "/readyz").status_code == 200
