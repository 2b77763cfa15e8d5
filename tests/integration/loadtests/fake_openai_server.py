"""A small OpenAI-compatible server for the load-test gate's integration tests.

It answers completions and chat completions (plain and streamed, with ``usage``), with a
configurable added latency, a delay between streamed tokens and an exact error ratio
(every n-th request fails, not a random draw, so tests are deterministic). It counts what
it served in a Prometheus-style ``/metrics`` so tests can check the gate's figures against
the server's own count.

Use ``running_server(...)`` in tests (aiohttp in a background thread, stopped on exit), or
run it as a process: ``python fake_openai_server.py --port 8000 --latency-ms 20``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

GENERATION_PATHS = ("/v1/completions", "/v1/chat/completions")


@dataclass
class FakeBehaviour:
    latency_s: float = 0.0  # before the response (before the first token when streamed)
    token_interval_s: float = 0.0  # between streamed tokens
    error_ratio: float = 0.0  # share of generation requests answered with HTTP 500
    tokens: int = 8  # generated tokens per response (capped by max_tokens)
    model: str = "fake-model"
    counts: Counter[tuple[str, int]] = field(default_factory=Counter)
    _error_debt: float = 0.0

    def should_fail(self) -> bool:
        self._error_debt += self.error_ratio
        if self._error_debt >= 1.0 - 1e-9:
            self._error_debt -= 1.0
            return True
        return False


def _completion_chunk(kind: str, text: str, model: str) -> dict[str, Any]:
    if kind == "chat":
        choice: dict[str, Any] = {"index": 0, "delta": {"content": text}, "finish_reason": None}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text, "finish_reason": None}
        obj = "text_completion"
    return {
        "id": "fake",
        "object": obj,
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
    }


def build_app(behaviour: FakeBehaviour) -> web.Application:
    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": behaviour.model}]})

    async def metrics(_: web.Request) -> web.Response:
        lines = ["# TYPE fake_openai_requests_total counter"]
        for (path, status), n in sorted(behaviour.counts.items()):
            lines.append(f'fake_openai_requests_total{{path="{path}",status="{status}"}} {n}')
        return web.Response(text="\n".join(lines) + "\n")

    async def generate(request: web.Request) -> web.StreamResponse:
        path = request.path
        kind = "chat" if path.endswith("chat/completions") else "completion"
        try:
            body = await request.json()
        except ValueError:
            behaviour.counts[(path, 400)] += 1
            return web.json_response({"error": {"message": "invalid JSON"}}, status=400)
        if behaviour.latency_s:
            await asyncio.sleep(behaviour.latency_s)
        if behaviour.should_fail():
            behaviour.counts[(path, 500)] += 1
            return web.json_response({"error": {"message": "injected failure"}}, status=500)
        n = min(behaviour.tokens, int(body.get("max_tokens") or behaviour.tokens))
        words = [f" tok{i}" for i in range(n)]
        usage = {"prompt_tokens": 4, "completion_tokens": n, "total_tokens": 4 + n}
        if not body.get("stream"):
            behaviour.counts[(path, 200)] += 1
            text = "".join(words)
            if kind == "chat":
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "length",
                }
            else:
                choice = {"index": 0, "text": text, "finish_reason": "length"}
            return web.json_response(
                {
                    "id": "fake",
                    "object": "completion",
                    "model": behaviour.model,
                    "choices": [choice],
                    "usage": usage,
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        try:
            await resp.prepare(request)
            for i, word in enumerate(words):
                if i and behaviour.token_interval_s:
                    await asyncio.sleep(behaviour.token_interval_s)
                chunk = _completion_chunk(kind, word, behaviour.model)
                await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if (body.get("stream_options") or {}).get("include_usage"):
                final = {
                    "id": "fake",
                    "object": "chunk",
                    "model": behaviour.model,
                    "choices": [],
                    "usage": usage,
                }
                await resp.write(f"data: {json.dumps(final)}\n\n".encode())
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except ConnectionError:  # the load generator hung up (it stops users mid-request)
            behaviour.counts[(path, 499)] += 1
            return resp
        behaviour.counts[(path, 200)] += 1
        return resp

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_get("/metrics", metrics)
    for p in GENERATION_PATHS:
        app.router.add_post(p, generate)
    return app


def parse_metrics(text: str) -> dict[tuple[str, int], int]:
    """``{(path, status): count}`` from the server's ``/metrics`` text."""
    out: dict[tuple[str, int], int] = {}
    for line in text.splitlines():
        if not line.startswith("fake_openai_requests_total{"):
            continue
        labels, value = line.rsplit(" ", 1)
        parts = dict(kv.split("=", 1) for kv in labels[labels.index("{") + 1 : -1].split(","))
        out[(parts["path"].strip('"'), int(parts["status"].strip('"')))] = int(value)
    return out


@contextmanager
def running_server(
    behaviour: FakeBehaviour | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[tuple[str, FakeBehaviour]]:
    """Serve in a background thread; yield (base URL, behaviour); stop on exit."""
    behaviour = behaviour or FakeBehaviour()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(build_app(behaviour), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        holder["runner"] = runner
        holder["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("fake OpenAI server did not start")
    try:
        yield f"http://{host}:{holder['port']}", behaviour
    finally:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--token-interval-ms", type=float, default=0.0)
    parser.add_argument("--error-ratio", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=8)
    args = parser.parse_args()
    behaviour = FakeBehaviour(
        latency_s=args.latency_ms / 1000,
        token_interval_s=args.token_interval_ms / 1000,
        error_ratio=args.error_ratio,
        tokens=args.tokens,
    )
    web.run_app(build_app(behaviour), host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
