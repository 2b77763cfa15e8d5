"""What one careless or hostile request must not do to a serving pod (issue 12, item 5).

The app runs in-process over httpx's ASGI transport, with the real engine on the tiny
model; each test reproduces a failure seen before the fix.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubellm.serving.app import create_app
from kubellm.serving.engine import Engine, EngineConfig
from kubellm.serving.lifecycle import ServerSettings, ServerState
from kubellm.serving.loading import LoadedModel, load_model, longest_token_chars


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: Path) -> LoadedModel:
    return load_model(tiny_model_dir)


class CountingTokenizer:
    """The tiny tokenizer, counting calls and optionally slow (a huge prompt's stand-in)."""

    def __init__(self, inner: Any, delay: float = 0.0) -> None:
        self.inner, self.delay, self.calls = inner, delay, 0

    def __call__(self, *args: Any, **kw: Any) -> Any:
        self.calls += 1
        time.sleep(self.delay)  # blocking, as a real tokenizer on a long text is
        return self.inner(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _state(loaded: LoadedModel, tokenizer: Any = None, **settings: Any) -> ServerState:
    state = ServerState(ServerSettings(model="tiny", served_model_name="tiny", **settings))
    engine = Engine(
        loaded.model,
        tokenizer or loaded.tokenizer,
        EngineConfig(max_batch_size=4),
        context_len=loaded.context_len,
        eos_ids=set(),
        pad_id=loaded.pad_id,
    )
    engine.start()
    state.engine, state.context_len = engine, loaded.context_len
    state.max_token_chars = longest_token_chars(loaded.tokenizer)
    state.status = "ready"
    return state


@pytest.fixture
def state(loaded: LoadedModel) -> Iterator[ServerState]:
    s = _state(loaded, max_prompt_tokens=100)
    yield s
    assert s.engine is not None
    s.engine.stop()


def _client(state: ServerState) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(state, loader=None))
    return httpx.AsyncClient(transport=transport, base_url="http://kubellm", timeout=60)


def _post(state: ServerState, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with _client(state) as client:
            return await client.post(path, **kw)

    return asyncio.run(go())


def _assert_openai_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = r.json()["error"]
    assert error["message"] and error["type"]
    return error


def test_body_over_the_limit_is_refused_unread_with_413(state: ServerState) -> None:
    # 100 prompt tokens -> 100 x 32 + 64 KiB; a 4.8 MB prompt once froze the pod
    body = {"model": "tiny", "prompt": "a" * 4_800_000, "max_tokens": 2}
    error = _assert_openai_error(_post(state, "/v1/completions", json=body), 413)
    assert error["code"] == "request_too_large" and "68736 bytes" in error["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b'{"model": "tiny", "prompt": "'
        for _ in range(100):
            yield b"a" * 10_000
        yield b'"}'

    _assert_openai_error(_post(state, "/v1/completions", content=chunks()), 413)
    ok = _post(state, "/v1/completions", json={"model": "tiny", "prompt": "Hi", "max_tokens": 2})
    assert ok.status_code == 200


def test_text_too_long_for_the_prompt_limit_is_refused_before_tokenising(
    loaded: LoadedModel,
) -> None:
    tokenizer = CountingTokenizer(loaded.tokenizer)
    state = _state(loaded, tokenizer, max_prompt_tokens=100)
    try:
        prompt = "a" * (100 * state.max_token_chars + 1)  # under the body limit
        r = _post(state, "/v1/completions", json={"model": "tiny", "prompt": prompt})
        error = _assert_openai_error(r, 400)
        assert error["code"] == "prompt_too_long" and "characters" in error["message"]
        messages = [{"role": "user", "content": prompt}]
        r = _post(state, "/v1/chat/completions", json={"model": "tiny", "messages": messages})
        assert _assert_openai_error(r, 400)["code"] == "prompt_too_long"
        assert tokenizer.calls == 0
    finally:
        assert state.engine is not None
        state.engine.stop()


def test_tokenising_runs_off_the_event_loop(loaded: LoadedModel) -> None:
    state = _state(loaded, CountingTokenizer(loaded.tokenizer, delay=3.0))

    async def go() -> None:
        async with _client(state) as client:
            body = {"model": "tiny", "prompt": "Hi", "max_tokens": 2}
            slow = asyncio.create_task(client.post("/v1/completions", json=body))
            started = time.monotonic()
            await asyncio.sleep(0.2)  # that request is being tokenised now
            health = await client.get("/healthz")
            assert health.status_code == 200
            assert time.monotonic() - started < 1.5  # not after the 3 s of tokenising
            assert not slow.done()
            assert (await slow).status_code == 200

    try:
        asyncio.run(go())
    finally:
        assert state.engine is not None
        state.engine.stop()


def test_a_dead_engine_thread_turns_healthz_false(
    loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_loop(self: Engine) -> None:
        raise RuntimeError("bookkeeping bug")

    monkeypatch.setattr(Engine, "_loop", broken_loop)
    state = _state(loaded)
    assert state.engine is not None
    state.engine._thread.join(10)  # type: ignore[union-attr]

    async def go() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with _client(state) as client:
            body = {"model": "tiny", "prompt": "Hi", "max_tokens": 2}
            return (
                await client.get("/healthz"),
                await client.get("/readyz"),
                await client.post("/v1/completions", json=body),
            )

    health, ready, completion = asyncio.run(go())
    assert health.status_code == 503 and health.json()["status"] == "dead"
    assert "bookkeeping bug" in health.json()["error"]
    assert ready.status_code == 503
    _assert_openai_error(completion, 503)


def test_a_non_streamed_request_times_out_and_leaves_the_batch(
    loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _state(loaded, request_timeout=0.3)
    engine = state.engine
    assert engine is not None
    forward = engine._forward

    def slow_forward(*args: Any) -> Any:
        time.sleep(0.05)
        return forward(*args)

    monkeypatch.setattr(engine, "_forward", slow_forward)
    try:
        started = time.monotonic()
        body = {"model": "tiny", "prompt": "Hi", "max_tokens": 100}  # >= 5 s of steps
        error = _assert_openai_error(_post(state, "/v1/completions", json=body), 504)
        assert error["code"] == "request_timeout"
        assert time.monotonic() - started < 4
        deadline = time.monotonic() + 10
        while engine.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.running == 0  # cancelled, not left generating for nobody
    finally:
        engine.stop()


def test_a_seed_beyond_64_bits_is_a_400(state: ServerState) -> None:
    body = {"model": "tiny", "prompt": "Hi", "max_tokens": 2, "seed": 2**70}
    assert _assert_openai_error(_post(state, "/v1/completions", json=body), 400)["param"] == "seed"
    body["seed"] = 2**63 - 1
    assert _post(state, "/v1/completions", json=body).status_code == 200


def test_logprobs_and_several_choices_are_refused(state: ServerState) -> None:
    base = {"model": "tiny", "max_tokens": 2}
    completion = {**base, "prompt": "Hi"}
    chat = {**base, "messages": [{"role": "user", "content": "Hi"}]}
    for path, body in [
        ("/v1/completions", {**completion, "logprobs": 1}),
        ("/v1/completions", {**completion, "logprobs": 0}),
        ("/v1/completions", {**completion, "n": 2}),
        ("/v1/chat/completions", {**chat, "logprobs": True}),
        ("/v1/chat/completions", {**chat, "top_logprobs": 2}),
        ("/v1/chat/completions", {**chat, "n": 3}),
    ]:
        _assert_openai_error(_post(state, path, json=body), 400)


def test_invalid_utf8_gets_an_openai_shaped_400(state: ServerState) -> None:
    headers = {"content-type": "application/json"}
    raw = b'{"model": "tiny", "prompt": "\xff\xfe", "max_tokens": 2}'
    error = _assert_openai_error(_post(state, "/v1/completions", content=raw, headers=headers), 400)
    assert "UTF-8" in error["message"]
    surrogate = b'{"model": "tiny", "prompt": "\\ud800", "max_tokens": 2}'
    r = _post(state, "/v1/completions", content=surrogate, headers=headers)
    assert "UTF-8" in _assert_openai_error(r, 400)["message"]
