"""Overload (429), context limits, chat templates and a SIGTERM that loses no request."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.serving.conftest import Server, start_server

TEMPLATE = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}Reply:"


@pytest.fixture(scope="module")
def small_server(plain_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """Batch of 1, queue of 1, chat template from the command line, no prompt limit."""
    s = start_server(
        str(plain_model_dir),
        tmp_path_factory.mktemp("logs"),
        "--served-model-name",
        "plain",
        "--max-batch-size",
        "1",
        "--max-queue",
        "1",
        "--chat-template",
        TEMPLATE,
        "--max-new-tokens",
        "200",
    )
    yield s
    s.stop()


def test_flood_over_a_small_queue_gets_429_with_retry_after(small_server: Server) -> None:
    body = {"model": "plain", "prompt": "Hi", "max_tokens": 150, "stop": ["zzzz"]}

    def post(_: int) -> httpx.Response:
        return httpx.post(small_server.v1 + "/completions", json=body, timeout=60)

    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(post, range(12)))
    codes = [r.status_code for r in responses]
    assert 429 in codes and 200 in codes, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "queue_full"
    # the admitted ones completed normally
    assert all(
        r.json()["usage"]["completion_tokens"] > 0 for r in responses if r.status_code == 200
    )


def test_prompt_over_the_model_context_is_a_400_stating_it(small_server: Server) -> None:
    client = openai.OpenAI(base_url=small_server.v1, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="plain", prompt="alias production " * 200, max_tokens=4)
    assert "context is 256 tokens" in info.value.message


def test_chat_template_from_the_command_line_is_used(small_server: Server) -> None:
    client = openai.OpenAI(base_url=small_server.v1, api_key="x", max_retries=0)
    r = client.chat.completions.create(
        model="plain", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    assert r.usage is not None and r.usage.completion_tokens <= 3


def test_sigterm_during_8_streams_completes_all_8(plain_model_dir: Path, tmp_path: Path) -> None:
    server = start_server(
        str(plain_model_dir), tmp_path, "--served-model-name", "plain", "--max-batch-size", "4"
    )
    try:
        client = openai.OpenAI(base_url=server.v1, api_key="x", max_retries=0, timeout=60)
        # this model has no chat template and none was configured: a clear 400
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model="plain", messages=[{"role": "user", "content": "Hi"}]
            )
        assert "no chat template" in info.value.message

        started = threading.Barrier(9)
        results: list[tuple[str, int]] = []

        def stream(i: int) -> None:
            chunks = client.completions.create(
                model="plain",
                prompt=f"Question {i}: how do I roll back?",
                max_tokens=150,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
            first = True
            reason, tokens = "", 0
            for c in chunks:
                if first:
                    first = False
                    started.wait(timeout=30)
                if c.choices and c.choices[0].finish_reason:
                    reason = c.choices[0].finish_reason
                if c.usage:
                    tokens = c.usage.completion_tokens
            results.append((reason, tokens))

        threads = [threading.Thread(target=stream, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        # wait until the first four stream (the other four wait in the queue), then SIGTERM
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = httpx.get(server.base_url + "/metrics").text
            if "kubellm_inflight_requests 8.0" in m:
                break
            time.sleep(0.02)
        server.proc.send_signal(signal.SIGTERM)
        assert sum(t.is_alive() for t in threads) == 8  # the signal lands mid-flight
        time.sleep(0.1)
        assert httpx.get(server.base_url + "/readyz").status_code == 503
        refused = httpx.post(
            server.v1 + "/completions", json={"model": "plain", "prompt": "Hi"}, timeout=10
        )
        assert refused.status_code == 503
        started.wait(timeout=30)
        for t in threads:
            t.join(timeout=60)
        assert len(results) == 8, results
        # every stream ran to its natural end: the token cap or the model's EOS
        assert all(reason in ("length", "stop") and tokens > 0 for reason, tokens in results)
        assert any(reason == "length" and tokens == 150 for reason, tokens in results), results
        assert server.proc.wait(timeout=30) == 0
    finally:
        server.stop()
