"""The gateway's ``/traffic`` answer (each release's answers since an instant) against fake
pods on loopback: what a canary step is judged on."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from kubellm.api import parse_llm
from kubellm.api.status import LLMStatus
from kubellm.api.timestamps import format_time
from kubellm.gateway.windows import from_json
from kubellm.operator.config import OperatorConfig
from kubellm.operator.sampling import read_live
from tests.integration.gateway.conftest import FakePod
from tests.unit.api.invalid_manifests import base_manifest

pytestmark = pytest.mark.timeout(60)


async def usage(fake: FakePod, request: web.Request) -> web.StreamResponse:
    return web.json_response({"choices": [{"text": "ok"}], "usage": {"completion_tokens": 7}})


async def failing(fake: FakePod, request: web.Request) -> web.StreamResponse:
    return web.json_response({"error": {"message": "boom"}}, status=500)


async def streamed(fake: FakePod, request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for i in range(5):
        await resp.write(f"data: {json.dumps({'i': i})}\n\n".encode())
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def crashing(fake: FakePod, request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(b"data: {}\n\n")
    assert request.transport is not None
    request.transport.abort()  # the pod dies mid-answer
    return resp


async def traffic(h: Any, since: float) -> Any:
    async with h.client.get(
        h.admin_url + "/traffic", params={"llm": "default/bot", "since": str(since)}
    ) as resp:
        assert resp.status == 200
        return from_json(await resp.json())


async def test_traffic_counts_each_release_in_the_window_with_errors_and_tokens(
    make_harness,
) -> None:
    draws = itertools.cycle([0.1, 0.9])  # production, then candidate, by turns
    h = await make_harness(rng=lambda: next(draws))
    h.add_llm("bot", [("3", "bot", 50), ("4", "bot-candidate", 50)])
    await h.add_pod("bot", "3", usage)
    await h.add_pod("bot", "4", failing)
    started = time.time() - 1
    codes = [(await h.complete("bot"))[0] for _ in range(10)]
    assert sorted(codes) == [200] * 5 + [500] * 5
    figures = await traffic(h, started)
    prod, cand = figures["3"], figures["4"]
    assert (prod.requests, prod.errors, prod.tokens) == (5, 0, 35)
    assert (cand.requests, cand.errors, cand.error_rate) == (5, 5, 1.0)
    assert prod.p95_ms is not None and prod.tokens_per_second is not None
    assert prod.p95_ttfb_ms is not None and prod.p95_ttfb_ms <= prod.p95_ms * 1.1
    assert await traffic(h, time.time() + 5) == {}  # nothing answered after a later start


async def test_streamed_events_count_as_tokens_and_a_mid_answer_crash_is_an_error(
    make_harness,
) -> None:
    h = await make_harness()
    h.add_llm("bot", [("3", "bot", 100)])
    pod = await h.add_pod("bot", "3", streamed)
    started = time.time() - 1
    async with h.client.post(
        h.url + "/v1/completions", json={"model": "bot", "prompt": "hi", "stream": True}
    ) as resp:
        assert resp.status == 200
        await resp.read()
    pod.handler = crashing
    async with h.client.post(
        h.url + "/v1/completions", json={"model": "bot", "prompt": "hi", "stream": True}
    ) as resp:
        with pytest.raises(Exception):  # noqa: B017 - the client sees a broken answer
            await resp.read()
    figures = (await traffic(h, started))["3"]
    assert (figures.requests, figures.errors, figures.tokens) == (2, 1, 5)


async def test_traffic_refuses_a_malformed_query(make_harness) -> None:
    h = await make_harness()
    async with h.client.get(h.admin_url + "/traffic", params={"llm": "bot", "since": "1"}) as r:
        assert r.status == 400
    async with h.client.get(h.admin_url + "/traffic", params={"llm": "a/b"}) as r:
        assert r.status == 400


async def test_the_operator_reads_a_canary_steps_window_from_the_gateway(make_harness) -> None:
    draws = itertools.cycle([0.1, 0.1, 0.1, 0.9])  # 3 to production, 1 to the candidate
    h = await make_harness(rng=lambda: next(draws))
    h.add_llm("bot", [("3", "bot", 75), ("4", "bot-candidate", 25)])
    await h.add_pod("bot", "3", usage)
    await h.add_pod("bot", "4", failing)
    started = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(8):
        await h.complete("bot")
    status = {
        "candidate": {
            "version": "4",
            "canary": {"step": 1, "weight": 25, "stepStartedAt": format_time(started)},
        }
    }
    manifest = base_manifest()
    manifest["metadata"].update(name="bot", namespace="default", uid="u")
    llm = parse_llm({**manifest, "status": status})
    config = OperatorConfig(gateway_demand_url=h.admin_url + "/demand")
    live = await asyncio.to_thread(read_live, config, llm)
    assert live is not None and live.since == format_time(started)
    assert (live.answered, live.asked) == (1, 1)
    assert (live.releases["3"].requests, live.releases["4"].errors) == (6, 2)
    # no canary step in the status: nothing is read
    idle = llm.model_copy(update={"status": LLMStatus()})
    assert await asyncio.to_thread(read_live, config, idle) is None
    # no gateway answering: None, and the step will fail closed
    gone = OperatorConfig(gateway_demand_url="http://127.0.0.1:9/demand")
    assert await asyncio.to_thread(read_live, gone, llm) is None
