"""Issue 12 item 8, at the operator's HTTP door: odd or replayed webhook deliveries get a
401 from the real aiohttp app, never a 500, and never a second nudge of the LLMs."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from kubellm.operator.webhooks import build_app, sign

SECRET = "s3cret"
BODY = json.dumps(
    {"entity": "model_version", "action": "created", "data": {"name": "bot", "version": "4"}}
)


@pytest.fixture
async def operator_app() -> AsyncIterator[tuple[int, list[tuple[str, str]]]]:
    nudged: list[tuple[str, str]] = []

    def nudge_model(model: str, why: str) -> list[str]:
        nudged.append((model, why))
        return ["default/bot"]

    app = build_app(SECRET, nudge_model)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield port, nudged
    await runner.cleanup()


def _post(port: int, headers: dict[str, str | bytes]) -> int:
    """POST the body with raw header bytes (a client library would refuse non-ASCII)."""
    lines = [b"POST /webhooks/mlflow HTTP/1.1", f"Host: 127.0.0.1:{port}".encode()]
    for key, value in headers.items():
        lines.append(key.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
    body = BODY.encode()
    lines += [b"Content-Type: application/json", f"Content-Length: {len(body)}".encode()]
    request = b"\r\n".join(lines) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(request)
        status_line = conn.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def _signed(delivery: str, ts: str | None = None) -> dict[str, str | bytes]:
    ts = ts or str(int(time.time()))
    return {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Signature": sign(SECRET, delivery, ts, BODY),
    }


async def test_replays_nan_and_non_ascii_signatures_are_401(
    operator_app: tuple[int, list[tuple[str, str]]],
) -> None:
    port, nudged = operator_app

    def post(headers: dict[str, str | bytes]) -> int:
        return _post(port, headers)

    first = _signed("delivery-1")
    assert await asyncio.to_thread(post, first) == 200
    assert await asyncio.to_thread(post, first) == 401  # the same delivery again: a replay
    assert await asyncio.to_thread(post, _signed("delivery-2", ts="nan")) == 401
    odd = {**_signed("delivery-3"), "X-MLflow-Signature": "v1,\u00fc".encode()}
    assert await asyncio.to_thread(post, odd) == 401
    assert nudged == [("bot", "webhook")]  # at once, before the answer
