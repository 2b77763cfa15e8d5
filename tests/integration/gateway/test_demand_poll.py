"""The operator's demand poller against a real gateway: a held request reaches the
operator's callback within a second, and the board then reports it."""

from __future__ import annotations

import asyncio

import pytest

from kubellm.operator.demanding import DemandBoard, poll_gateways

pytestmark = pytest.mark.timeout(60)


async def test_operator_hears_of_a_held_request_at_once(make_harness) -> None:
    h = await make_harness(hold_timeout=30)
    h.add_llm("bot", [("1", "bot", 100)])
    board = DemandBoard()
    news: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    poller = asyncio.create_task(
        poll_gateways(h.admin_url + "/demand", board, lambda ns, n: news.put_nowait((ns, n)))
    )
    try:
        for _ in range(100):  # the first report arrives
            if board.get("default", "bot") is not None:
                break
            await asyncio.sleep(0.05)
        assert board.get("default", "bot") is not None
        loop = asyncio.get_running_loop()
        started = loop.time()
        held = asyncio.create_task(h.complete("bot"))
        assert await asyncio.wait_for(news.get(), 5) == ("default", "bot")
        assert loop.time() - started < 1.0
        demand = board.get("default", "bot")
        assert demand is not None and demand.held == 1
        fake = await h.add_pod("bot", "1")  # the pod the operator started turns ready
        status, _, _ = await asyncio.wait_for(held, 5)
        assert status == 200 and len(fake.received) == 1
        assert await asyncio.wait_for(news.get(), 5) == ("default", "bot")  # cold start done
        demand = board.get("default", "bot")
        assert demand is not None and demand.cold_starts == 1 and demand.held == 0
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
