"""The reconcile daemon's inbox and the nudges that fill it (kopf runs them; see handlers)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import kopf

from kubellm.operator.handlers import Inbox, Nudges


class Stopper:
    """Just enough of `kopf.DaemonStopped` for `Inbox.take`."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    def wait(self) -> Any:
        return self.event.wait()


def _stopped(stopper: Stopper) -> kopf.DaemonStopped:
    return cast(kopf.DaemonStopped, stopper)


async def test_nudges_before_a_take_coalesce_into_one_reason_the_first() -> None:
    inbox, stopper = Inbox("ns/bot"), Stopper()
    inbox.nudge("webhook")
    inbox.nudge("change")
    inbox.nudge("webhook")
    assert await inbox.take(30, _stopped(stopper)) == "webhook"
    started = time.monotonic()
    assert await inbox.take(0.2, _stopped(stopper)) is None  # all served by that one
    assert time.monotonic() - started >= 0.19


async def test_a_nudge_wakes_a_waiting_take_at_once() -> None:
    inbox, stopper = Inbox("ns/bot"), Stopper()
    asyncio.get_running_loop().call_later(0.05, inbox.nudge, "demand")
    started = time.monotonic()
    assert await inbox.take(30, _stopped(stopper)) == "demand"
    assert time.monotonic() - started < 1.0


async def test_stopping_ends_a_take_without_a_reason() -> None:
    inbox, stopper = Inbox("ns/bot"), Stopper()
    asyncio.get_running_loop().call_later(0.05, stopper.event.set)
    started = time.monotonic()
    assert await inbox.take(30, _stopped(stopper)) is None
    assert time.monotonic() - started < 1.0


def test_an_inbox_lives_in_its_llms_memo() -> None:
    memo = kopf.Memo()
    inbox = Inbox.of(memo, None, "bot")
    assert Inbox.of(memo, None, "bot") is inbox and inbox.key == "default/bot"
    assert Inbox.of(kopf.Memo(), "ns", "bot") is not inbox


async def test_a_model_nudges_exactly_the_llms_that_use_it() -> None:
    a, b, c = Inbox("ns/a"), Inbox("ns/b"), Inbox("other/c")
    nudges = Nudges(
        by_llm={("ns", "a"): [a], ("ns", "b"): [b], ("other", "c"): [c]},
        by_model={"shared": [b, a], "solo": [c]},
    )
    assert nudges.model("shared", "webhook") == ["ns/a", "ns/b"]
    assert nudges.model("unknown", "webhook") == []
    nudges.llm("other", "c", "demand")
    nudges.llm("other", "gone", "demand")  # not indexed (deleted): nothing to wake
    stopper = _stopped(Stopper())
    assert [await i.take(0, stopper) for i in (a, b, c)] == ["webhook", "webhook", "demand"]
