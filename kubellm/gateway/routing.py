"""Routing decisions of the gateway, as pure functions.

Which release of an LLM takes a request (by the weights the operator wrote into the LLM's
status), which pod of that release, whether a failed attempt is tried again, and whether a
request may wait for a release at zero replicas. Nothing here does I/O or reads a clock:
the proxy passes in the random number, the counts and the failure, so every branch is tested
without a server.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "Endpoint",
    "Failure",
    "Route",
    "may_hold",
    "parse_routes",
    "pick_endpoint",
    "pick_release",
    "retry_after_seconds",
    "should_retry",
]


@dataclass(frozen=True)
class Route:
    """One release of an LLM and its share of the traffic."""

    version: str
    #: the Service whose pods serve this release (its selector picks them)
    service: str
    weight: int


@dataclass(frozen=True, order=True)
class Endpoint:
    """A ready pod of a release: where one attempt goes."""

    host: str
    port: int
    pod: str = ""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def parse_routes(name: str, status: Mapping[str, Any] | None) -> list[Route]:
    """The routes of an LLM from its status (written by the operator, the one writer).

    ``status.serving.routes`` is the contract: ``[{version, service, weight}]``. An LLM whose
    operator predates routes but has a production release gets the one route the operator
    always built for it: 100% to the production Service, named after the LLM. Malformed
    entries are skipped (status is input here, and one bad entry must not stop the rest).
    """
    status = status or {}
    serving = status.get("serving") or {}
    raw = serving.get("routes") if isinstance(serving, Mapping) else None
    routes: list[Route] = []
    if isinstance(raw, list):
        for item in raw:
            if not isinstance(item, Mapping):
                continue
            version, service, weight = item.get("version"), item.get("service"), item.get("weight")
            if not isinstance(service, str) or not service or isinstance(weight, bool):
                continue
            if not isinstance(weight, int) or weight < 0:
                continue
            routes.append(Route(str(version or ""), service, weight))
        return routes
    production = status.get("production") or {}
    if isinstance(production, Mapping) and production.get("version"):
        return [Route(str(production["version"]), name, 100)]
    return []


def pick_release(routes: Sequence[Route], ready: Mapping[str, int], r: float) -> Route | None:
    """The release that takes one request.

    ``r`` is uniform in [0, 1); ``ready`` maps a route's Service to its ready endpoints.
    Releases are drawn by weight among those with ready endpoints, so a canary that lost its
    pods sends its share to the others instead of failing it. None: no release with weight
    has a ready endpoint (the caller holds the request, or answers 503).
    """
    candidates = [rt for rt in routes if rt.weight > 0 and ready.get(rt.service, 0) > 0]
    total = sum(rt.weight for rt in candidates)
    if total <= 0:
        return None
    point = min(max(r, 0.0), math.nextafter(1.0, 0.0)) * total
    for rt in candidates:
        point -= rt.weight
        if point < 0:
            return rt
    return candidates[-1]


def pick_endpoint(
    endpoints: Sequence[Endpoint],
    inflight: Mapping[Endpoint, int],
    exclude: frozenset[Endpoint] = frozenset(),
    turn: int = 0,
) -> Endpoint | None:
    """The endpoint with the fewest requests in flight from this gateway; ties rotate by
    ``turn`` (a counter the caller increments), so equal pods share the load evenly."""
    usable = [e for e in endpoints if e not in exclude]
    if not usable:
        return None
    least = min(inflight.get(e, 0) for e in usable)
    tied = [e for e in usable if inflight.get(e, 0) == least]
    return tied[turn % len(tied)]


class Failure(StrEnum):
    """How an attempt to reach a pod failed before any byte went to the client."""

    CONNECT = "connect"  # refused, reset or timed out while connecting
    UNAVAILABLE = "unavailable"  # the pod answered 503: starting or draining
    OTHER = "other"  # anything else: not retried


def should_retry(failure: Failure, attempt: int, sent_to_client: bool, others: int) -> bool:
    """Retry once, on another endpoint, and only while the client has received nothing.

    ``attempt`` counts attempts made so far (1 after the first), ``others`` the ready
    endpoints not tried yet. A request is never sent twice once an answer started flowing,
    so a retry can neither duplicate output nor mix two pods' answers.
    """
    if sent_to_client or attempt >= 2 or others <= 0:
        return False
    return failure in (Failure.CONNECT, Failure.UNAVAILABLE)


def may_hold(held: int, max_held: int) -> bool:
    """Whether one more request may wait for an LLM that has no ready endpoint."""
    return max_held > 0 and held < max_held


def retry_after_seconds(waited: float, hold_timeout: float) -> int:
    """The Retry-After of a 503 after holding: at least 1 s, about as long as waited so far
    (a cold start still under way is likely to need about as long again), capped by the
    hold timeout."""
    return max(1, min(math.ceil(hold_timeout), math.ceil(waited) if waited > 0 else 1))
