"""The post-promotion watch's loop without a cluster: the planner's routes drive a real
gateway in front of fake pods, the operator's reader (`sampling.read_watch_live`) reads the
gateway's window of the watch, and the planner judges it. Version 2, promoted over version
1, starts failing its requests; the next look rolls production back to version 1 by itself,
and after the planner's routes every answer comes from version 1 again (the gateway's
``X-Kubellm-Release`` header says so)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from kubellm.operator.config import OperatorConfig
from kubellm.operator.planning import plan
from kubellm.operator.sampling import read_watch_live
from tests.integration.gateway.conftest import FakePod
from tests.integration.gateway.test_canary_loop import _publish, _routes
from tests.unit.operator.test_plan import _carry
from tests.unit.operator.test_watching import _after_promotion, _promoting, _watched_llm

pytestmark = pytest.mark.timeout(60)


def _breakable() -> tuple[Any, list[bool]]:
    """A pod that answers 500 to everything once ``broken[0]`` is set."""
    broken = [False]

    async def handler(fake: FakePod, request: web.Request) -> web.StreamResponse:
        if broken[0]:
            return web.json_response({"error": {"message": "injected"}}, status=500)
        return web.json_response({"choices": [{"text": "ok"}], "pod": fake.name})

    return handler, broken


async def _releases(h: Any, n: int) -> list[tuple[int, str]]:
    out = []
    for _ in range(n):
        status, headers, _ = await h.complete("support-bot")
        out.append((status, headers.get("X-Kubellm-Release", "")))
    return out


async def test_a_promoted_release_that_breaks_is_rolled_back_at_the_next_look(
    make_harness,
) -> None:
    h = await make_harness()
    config = OperatorConfig(tracking_uri="http://mlflow:5000", gateway_demand_url="")
    llm = _watched_llm(window="10m", interval="5s", minRequests=10)
    start = datetime.now(UTC).replace(microsecond=0)
    promoted = plan(llm, _promoting(), config, start)
    assert _routes(promoted) == [("2", "support-bot", 100)]
    _publish(h, promoted)
    await h.add_pod("support-bot", "1")  # kept warm, no traffic
    handler, broken = _breakable()
    v2 = await h.add_pod("support-bot", "2", handler)

    assert await _releases(h, 20) == [(200, "2")] * 20
    broken[0] = True  # the fault's onset
    assert await _releases(h, 20) == [(500, "2")] * 20

    config = replace(config, gateway_demand_url=h.admin_url + "/demand")
    llm = _carry(llm, promoted)
    now = datetime.now(UTC)
    live = await asyncio.to_thread(read_watch_live, config, llm, now)
    assert live is not None and live.releases["2"].requests == 40
    assert live.releases["2"].errors == 20
    judged = plan(llm, _after_promotion(live), config, now + timedelta(seconds=1))
    assert _routes(judged) == [("1", "support-bot", 100)]
    assert judged.status.production is not None and judged.status.production.version == "1"
    assert judged.status.withdrawn_versions == ["2"]
    assert judged.status.history[0].verdict == "rolledBack"

    _publish(h, judged)
    before = len(v2.received)
    assert await _releases(h, 20) == [(200, "1")] * 20
    assert len(v2.received) == before
