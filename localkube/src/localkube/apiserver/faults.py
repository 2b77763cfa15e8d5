"""Request-level fault injection for reliability tests (spec §13).

Python API (`ApiServer.faults`) and JSON admin endpoint `POST /_localkube/faults` share
one :class:`FaultInjector`. The endpoint's body is one action:

    {"action": "add", "verb": "patch", "resource": "widgets", "subresource": null,
     "user_agent": "kopf", "content_type": "merge-patch", "code": 500, "count": 1,
     "retry_after": null, "delay": 0.0}
    {"action": "cut_watches", "resource": "widgets"}      # close open watch streams
    {"action": "expire_watches", "resource": "widgets"}   # ERROR 410 in-stream, then close;
                                                         # resuming from older RVs gives 410
    {"action": "pause", "seconds": 3}                     # requests hang for 3 s
    {"action": "clear"}

Matching: every given criterion must hold; `resource` matches the plural or
`plural.group`, `user_agent` and `content_type` are substrings. `code` 0 means "no error,
only the delay" (latency injection). `verb` is the Kubernetes verb (get, list, watch,
create, update, patch, delete, deletecollection).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Fault", "FaultInjector"]


@dataclass
class Fault:
    verb: str | None = None
    resource: str | None = None
    subresource: str | None = None
    user_agent: str | None = None
    content_type: str | None = None
    code: int = 500
    count: int = 1
    retry_after: int | None = None
    delay: float = 0.0

    def matches(
        self,
        verb: str,
        resource: str | None,
        subresource: str | None,
        user_agent: str,
        content_type: str,
    ) -> bool:
        if self.verb and self.verb.lower() != verb:
            return False
        if self.resource and (resource is None or not _resource_matches(self.resource, resource)):
            return False
        if self.subresource is not None and self.subresource != (subresource or ""):
            return False
        if self.user_agent and self.user_agent.lower() not in user_agent.lower():
            return False
        return not (self.content_type and self.content_type not in content_type)


def _resource_matches(wanted: str, resource: str) -> bool:
    """`resource` is `plural.group` (or `plural`); `wanted` may be either form."""
    return wanted == resource or wanted == resource.split(".", 1)[0]


class FaultInjector:
    """Faults for the next matching requests, watch cuts and expiry, and API pauses."""

    def __init__(
        self,
        signal_watches: Callable[[str | None, str], int] | None = None,
    ) -> None:
        self._faults: list[Fault] = []
        self._signal = signal_watches
        self.paused_until = 0.0

    def add(
        self,
        verb: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
        user_agent: str | None = None,
        content_type: str | None = None,
        code: int = 500,
        count: int = 1,
        retry_after: int | None = None,
        delay: float = 0.0,
    ) -> Fault:
        fault = Fault(
            verb, resource, subresource, user_agent, content_type, code, count, retry_after, delay
        )
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()
        self.paused_until = 0.0

    @property
    def active(self) -> list[Fault]:
        return [f for f in self._faults if f.count > 0]

    def take(
        self,
        verb: str,
        resource: str | None,
        subresource: str | None,
        user_agent: str,
        content_type: str,
    ) -> Fault | None:
        """The first matching fault, with its count decremented (None if none matches)."""
        for fault in self._faults:
            if fault.count > 0 and fault.matches(
                verb, resource, subresource, user_agent, content_type
            ):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def cut_watches(self, resource: str | None = None) -> int:
        """Close open watch streams (of `resource`, or all); returns how many."""
        return self._signal(resource, "close") if self._signal else 0

    def expire_watches(self, resource: str | None = None) -> int:
        """Send ERROR 410 Expired on open watches and close them; returns how many."""
        return self._signal(resource, "expire") if self._signal else 0

    def pause(self, seconds: float) -> None:
        """Requests arriving in the next `seconds` hang until the pause ends."""
        self.paused_until = time.monotonic() + seconds

    async def wait_if_paused(self) -> None:
        remaining = self.paused_until - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)

    def apply_json(self, body: dict[str, Any]) -> dict[str, Any]:
        """Run one admin action (see module docstring); returns a small JSON result."""
        action = body.get("action", "add")
        args = {k: v for k, v in body.items() if k != "action"}
        if action == "add":
            return {"added": asdict(self.add(**args))}
        if action == "cut_watches":
            return {"closed": self.cut_watches(args.get("resource"))}
        if action == "expire_watches":
            return {"expired": self.expire_watches(args.get("resource"))}
        if action == "pause":
            self.pause(float(args.get("seconds", 0)))
            return {"pausedFor": float(args.get("seconds", 0))}
        if action == "clear":
            self.clear()
            return {"cleared": True}
        raise ValueError(f"unknown action {action!r}")

    def describe(self) -> dict[str, Any]:
        return {
            "faults": [asdict(f) for f in self.active],
            "pausedFor": max(0.0, self.paused_until - time.monotonic()),
        }
