"""What a request asks the engine for, and how its results come back: no torch here.

The routes, the scheduler and the engine all speak these types, so they live apart from
the tensors: ``SamplingParams`` says how to pick tokens and when to stop, the events say
what happened (a piece of text, the end, or a failure), and a ``RequestStream`` carries
the events of one request from the engine thread to whoever waits for them, an asyncio
route or a blocking caller (the warm-up, tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

__all__ = [
    "ErrorEvent",
    "Event",
    "FinishEvent",
    "RequestStream",
    "SamplingParams",
    "TokenEvent",
    "deliver_all",
]


@dataclass(frozen=True)
class SamplingParams:
    """Per-request decoding parameters (OpenAI semantics: temperature 0 means greedy)."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    # Keep generating past end-of-sequence tokens, up to the token cap (benchmarks).
    ignore_eos: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class TokenEvent:
    """One generated token; ``text`` is the newly safe-to-show text (may be empty)."""

    text: str


@dataclass(frozen=True)
class FinishEvent:
    reason: str  # "stop" | "length" | "cancelled"
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class ErrorEvent:
    error: Exception


Event = TokenEvent | FinishEvent | ErrorEvent


class RequestStream:
    """The caller's handle on one submitted request: its events, and a way to cancel it.

    Events are produced on the engine thread and delivered either into an asyncio queue
    (thread-safely, through the loop) or, without a loop, into a plain queue.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._loop = loop
        self._aqueue: asyncio.Queue[Event] | None = asyncio.Queue() if loop else None
        self._squeue: queue.Queue[Event] = queue.Queue()
        self.cancelled = False
        self._wake: Callable[[], None] = lambda: None

    def deliver(self, event: Event) -> None:
        if self._loop is None or self._aqueue is None:
            self._squeue.put(event)
            return
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is listening
            self._loop.call_soon_threadsafe(self._aqueue.put_nowait, event)

    def cancel(self) -> None:
        """Drop the request: it leaves the batch (or the queue) before the next step."""
        self.cancelled = True
        self._wake()

    async def events(self) -> AsyncIterator[Event]:
        assert self._aqueue is not None, "events() needs a stream submitted with a loop"
        while True:
            event = await self._aqueue.get()
            yield event
            if not isinstance(event, TokenEvent):
                return

    def wait(self, timeout: float) -> tuple[str, FinishEvent]:
        """Block until the request ends (no-loop streams); return (text, finish)."""
        deadline = time.monotonic() + timeout
        parts: list[str] = []
        while True:
            event = self._squeue.get(timeout=max(0.0, deadline - time.monotonic()))
            if isinstance(event, TokenEvent):
                parts.append(event.text)
            elif isinstance(event, ErrorEvent):
                raise event.error
            else:
                return "".join(parts), event


def _put_all(items: list[tuple[asyncio.Queue[Event], Event]]) -> None:
    for q, event in items:
        q.put_nowait(event)


def deliver_all(items: list[tuple[RequestStream, Event]]) -> None:
    """Deliver a step's events with one wake-up per event loop, not one per token.

    Each ``call_soon_threadsafe`` wakes the loop and contends for the GIL with the engine
    thread; batching them per step keeps the loop's share of the GIL small.
    """
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Queue[Event], Event]]] = {}
    for stream, event in items:
        if stream._loop is None or stream._aqueue is None:
            stream._squeue.put(event)
        else:
            by_loop.setdefault(stream._loop, []).append((stream._aqueue, event))
    for loop, batch in by_loop.items():
        with contextlib.suppress(RuntimeError):  # loop closed: nobody is listening
            loop.call_soon_threadsafe(_put_all, batch)
