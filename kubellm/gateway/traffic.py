"""Live traffic per LLM inside one gateway: requests in flight, requests held, cold starts.

A request for an LLM with no ready endpoint (scaled to zero, or all pods restarting) waits
here in a bounded FIFO queue of its LLM. When an endpoint turns ready the proxy calls
`release`: the waiters resume in arrival order, so held requests are forwarded in the order
they came. The time from the first held request to that release is the cold start as a
client sees it, and is recorded (metrics, and the demand report the operator copies into
the LLM's status).

Every change the operator must act on quickly (a first request held, a cold start done)
moves ``seq`` and wakes the long polls of ``GET /demand`` (`wait_for_change`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from kubellm.api.timestamps import format_time
from kubellm.gateway.demand import DemandReport, LLMDemand
from kubellm.gateway.routing import may_hold

__all__ = ["ColdStart", "Traffic"]


@dataclass(frozen=True)
class ColdStart:
    llm: str
    seconds: float
    released: int


@dataclass
class _LLMTraffic:
    last_activity: float
    inflight: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    #: clock time the first request of the current hold episode arrived
    hold_started: float | None = None
    cold_starts: int = 0
    last_cold_start_s: float | None = None
    last_cold_start_at: str | None = None


class Traffic:
    """All LLMs' counters and hold queues; one per gateway process, used on its event loop."""

    def __init__(
        self,
        max_held: int,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.max_held = max_held
        self._clock = clock
        self._wall = wall
        self._started = clock()
        self._llms: dict[str, _LLMTraffic] = {}
        self.seq = 0
        self.instance = uuid.uuid4().hex[:16]
        self._changed: asyncio.Event | None = None

    def _get(self, llm: str) -> _LLMTraffic:
        entry = self._llms.get(llm)
        if entry is None:
            entry = self._llms[llm] = _LLMTraffic(last_activity=self._started)
        return entry

    def _bump(self) -> None:
        self.seq += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    # ------------------------------------------------------------ in flight
    def begin(self, llm: str) -> None:
        entry = self._get(llm)
        entry.inflight += 1
        entry.last_activity = self._clock()

    def end(self, llm: str) -> None:
        entry = self._get(llm)
        entry.inflight = max(0, entry.inflight - 1)
        entry.last_activity = self._clock()

    # ------------------------------------------------------------ holding
    def held(self, llm: str) -> int:
        entry = self._llms.get(llm)
        return len(entry.waiters) if entry else 0

    def hold(self, llm: str) -> asyncio.Future[None] | None:
        """A future that completes when ``llm`` has a ready endpoint; None when the queue
        is full (the caller answers 503 at once)."""
        entry = self._get(llm)
        if not may_hold(len(entry.waiters), self.max_held):
            return None
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.waiters.append(fut)
        entry.last_activity = self._clock()
        if entry.hold_started is None:
            entry.hold_started = self._clock()
            self._bump()  # the operator must hear of this now: scale from zero
        return fut

    def drop(self, llm: str, fut: asyncio.Future[None]) -> None:
        """A held request left (timed out, or its client went away)."""
        entry = self._llms.get(llm)
        if entry is None:
            return
        try:
            entry.waiters.remove(fut)
        except ValueError:
            pass
        if not entry.waiters and not fut.done():
            entry.hold_started = None  # nobody waits any more: no cold start to measure

    def release(self, llm: str) -> ColdStart | None:
        """Wake every held request of ``llm`` in arrival order; returns the cold start when
        this ends a hold episode."""
        entry = self._llms.get(llm)
        if entry is None or entry.hold_started is None:
            return None
        released = 0
        while entry.waiters:
            fut = entry.waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                released += 1
        seconds = self._clock() - entry.hold_started
        entry.hold_started = None
        if released == 0:
            return None
        entry.cold_starts += 1
        entry.last_cold_start_s = round(seconds, 3)
        entry.last_cold_start_at = format_time(self._wall())
        self._bump()
        return ColdStart(llm, seconds, released)

    def holding(self) -> list[str]:
        return [k for k, e in self._llms.items() if e.waiters]

    # ------------------------------------------------------------ reporting
    def report(self) -> DemandReport:
        now = self._clock()
        llms: dict[str, LLMDemand] = {}
        for key, e in sorted(self._llms.items()):
            busy = e.inflight > 0 or bool(e.waiters)
            llms[key] = LLMDemand(
                inflight=e.inflight,
                held=len(e.waiters),
                idle_seconds=0.0 if busy else round(max(0.0, now - e.last_activity), 3),
                holding_seconds=round(now - e.hold_started, 3) if e.hold_started else 0.0,
                cold_starts=e.cold_starts,
                last_cold_start_seconds=e.last_cold_start_s,
                last_cold_start_at=e.last_cold_start_at,
            )
        return DemandReport(self.instance, self.seq, round(now - self._started, 3), llms)

    def track(self, llms: list[str]) -> None:
        """Report exactly the fronted LLMs: new ones idle since this start, deleted ones
        dropped once nothing of theirs is in flight or held."""
        for key in llms:
            self._get(key)
        wanted = set(llms)
        for key in [k for k, e in self._llms.items() if k not in wanted]:
            entry = self._llms[key]
            if entry.inflight == 0 and not entry.waiters:
                del self._llms[key]

    async def wait_for_change(self, after: int, timeout: float) -> None:
        """Return once ``seq`` > ``after``, or after ``timeout`` seconds."""
        if self.seq > after or timeout <= 0:
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
