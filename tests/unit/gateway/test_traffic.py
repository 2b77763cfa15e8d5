"""Traffic per LLM: holding in order, bounds, cold starts, idleness, change notification."""

from __future__ import annotations

import asyncio

import pytest

from kubellm.gateway.traffic import Traffic


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_held_requests_are_released_in_arrival_order() -> None:
    traffic = Traffic(max_held=8, clock=Clock())
    order: list[int] = []

    async def waiter(i: int) -> None:
        fut = traffic.hold("ns/bot")
        assert fut is not None
        await fut
        order.append(i)

    tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
    await asyncio.sleep(0)
    assert traffic.held("ns/bot") == 5
    cold = traffic.release("ns/bot")
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert cold is not None and cold.released == 5
    assert traffic.held("ns/bot") == 0


async def test_hold_queue_refuses_beyond_its_bound() -> None:
    traffic = Traffic(max_held=2)
    assert traffic.hold("ns/bot") is not None
    assert traffic.hold("ns/bot") is not None
    assert traffic.hold("ns/bot") is None
    assert traffic.hold("ns/other") is not None  # bounds are per LLM


async def test_cold_start_is_measured_from_the_first_held_request() -> None:
    clock = Clock()
    traffic = Traffic(max_held=8, clock=clock, wall=lambda: 1_764_496_800.0)
    first = traffic.hold("ns/bot")
    clock.now += 2.0
    second = traffic.hold("ns/bot")
    clock.now += 5.5
    cold = traffic.release("ns/bot")
    assert first is not None and second is not None and first.done() and second.done()
    assert cold is not None and cold.seconds == pytest.approx(7.5)
    d = traffic.report().llms["ns/bot"]
    assert d.cold_starts == 1 and d.last_cold_start_seconds == 7.5
    assert d.last_cold_start_at == "2025-11-30T10:00:00Z"


async def test_release_without_holders_is_no_cold_start() -> None:
    traffic = Traffic(max_held=8)
    assert traffic.release("ns/bot") is None
    fut = traffic.hold("ns/bot")
    assert fut is not None
    traffic.drop("ns/bot", fut)  # its client left
    assert traffic.release("ns/bot") is None
    assert traffic.report().llms["ns/bot"].cold_starts == 0


async def test_idleness_counts_from_the_last_request_and_never_while_busy() -> None:
    clock = Clock()
    traffic = Traffic(max_held=8, clock=clock)
    traffic.track(["ns/bot"])
    clock.now += 30
    assert traffic.report().llms["ns/bot"].idle_seconds == 30.0  # since the gateway started
    traffic.begin("ns/bot")
    clock.now += 100
    assert traffic.report().llms["ns/bot"].idle_seconds == 0.0
    traffic.end("ns/bot")
    clock.now += 12
    report = traffic.report().llms["ns/bot"]
    assert (report.inflight, report.idle_seconds) == (0, 12.0)


async def test_first_hold_and_cold_start_wake_long_polls() -> None:
    traffic = Traffic(max_held=8)
    seq = traffic.seq
    poll = asyncio.create_task(traffic.wait_for_change(seq, timeout=5))
    await asyncio.sleep(0)
    assert not poll.done()
    traffic.hold("ns/bot")
    await asyncio.wait_for(poll, 1)
    assert traffic.seq == seq + 1
    traffic.hold("ns/bot")  # a second held request is no news
    assert traffic.seq == seq + 1
    traffic.release("ns/bot")
    assert traffic.seq == seq + 2


async def test_long_poll_returns_after_its_timeout_without_change() -> None:
    traffic = Traffic(max_held=8)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await traffic.wait_for_change(traffic.seq, timeout=0.05)
    assert loop.time() - started >= 0.04
    await asyncio.wait_for(traffic.wait_for_change(traffic.seq - 1, timeout=5), 0.5)


async def test_deleted_llms_leave_the_report_once_idle() -> None:
    traffic = Traffic(max_held=8)
    traffic.track(["ns/a", "ns/b"])
    traffic.begin("ns/b")
    traffic.track(["ns/a"])
    assert sorted(traffic.report().llms) == ["ns/a", "ns/b"]  # b still has a request open
    traffic.end("ns/b")
    traffic.track(["ns/a"])
    assert sorted(traffic.report().llms) == ["ns/a"]
