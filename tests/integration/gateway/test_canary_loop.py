"""The canary's loop without a cluster: the planner's routes drive a real gateway in front
of fake pods, the operator's reader (`sampling.read_live`) reads the gateway's window, and
the planner judges it. A candidate that fails 30% of its requests is stopped within one
interval at its first step; clients see errors only on the candidate's share, and after the
planner's next routes every request goes to production again."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from kubellm.api import LLM
from kubellm.api.status import LLMStatus
from kubellm.operator.config import OperatorConfig
from kubellm.operator.planning import Plan, plan
from kubellm.operator.sampling import read_live
from tests.integration.gateway.conftest import FakePod
from tests.unit.operator.test_canary_stages import _canary_llm, _observed

pytestmark = pytest.mark.timeout(60)


def _flaky() -> Any:
    """A pod that fails 3 requests in 10 with a 500."""
    counter = itertools.count(1)

    async def handler(fake: FakePod, request: web.Request) -> web.StreamResponse:
        if next(counter) % 10 in (3, 6, 9):
            return web.json_response({"error": {"message": "injected"}}, status=500)
        return web.json_response({"choices": [{"text": "ok"}], "pod": fake.name})

    return handler


def _routes(p: Plan) -> list[tuple[str, str, int]]:
    assert p.status.serving is not None
    return [(r.version, r.service, r.weight) for r in p.status.serving.routes]


def _publish(h: Any, p: Plan) -> None:
    """What the gateway's watch would see: the LLM with the plan's routes."""
    h.add_llm("support-bot", _routes(p))


def _next(llm: LLM, p: Plan) -> LLM:
    return llm.model_copy(update={"status": LLMStatus.model_validate(p.status.dump())})


async def test_a_candidate_failing_30_percent_is_stopped_at_its_first_step(make_harness) -> None:
    draws = itertools.cycle([i / 10 for i in range(10)])  # exactly 10% draw the candidate
    h = await make_harness(rng=lambda: next(draws))
    config = OperatorConfig(tracking_uri="http://mlflow:5000", gateway_demand_url="")
    llm = _canary_llm(
        steps=[{"weight": 10, "pause": "1m"}, {"weight": 50, "pause": "1m"}], minRequests=10
    )
    start = datetime.now(UTC).replace(microsecond=0)
    first = plan(llm, _observed(), config, start)
    assert _routes(first) == [("1", "support-bot", 90), ("2", "support-bot-candidate", 10)]
    _publish(h, first)
    production = await h.add_pod("support-bot", "1")
    candidate = await h.add_pod("support-bot", "2", _flaky())  # 30% of its answers fail

    codes = [(await h.complete("support-bot"))[0] for _ in range(300)]
    failed = codes.count(500)
    # clients see errors only on the candidate's share: 30 requests, 9 of them failed
    assert (len(production.received), len(candidate.received)) == (270, 30)
    assert failed == 9 and codes.count(200) == 291

    config = replace(config, gateway_demand_url=h.admin_url + "/demand")
    llm = _next(llm, first)
    live = await asyncio.to_thread(read_live, config, llm)
    assert live is not None and live.releases["2"].errors == 9
    judged = plan(llm, replace(_observed(), live=live), config, start + timedelta(seconds=10))
    # stopped at the first step, before its pause ended: all traffic back to production
    assert _routes(judged) == [("1", "support-bot", 100)]
    assert "2" in judged.status.refused_versions and judged.status.stage is None
    step = judged.status.history[0].canary[0]
    assert (step.step, step.outcome, step.requests, step.production_requests) == (
        1,
        "Failed",
        30,
        270,
    )
    assert "error rate 30.00% (9 of 30)" in step.reasons[0]

    _publish(h, judged)
    before = len(candidate.received)
    codes = [(await h.complete("support-bot"))[0] for _ in range(50)]
    assert codes == [200] * 50 and len(candidate.received) == before
