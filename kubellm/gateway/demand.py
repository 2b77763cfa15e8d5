"""Demand: what the gateway tells the operator about each LLM's traffic, on the wire.

The operator is the one writer of replicas and weights; the gateway only reports. Each
gateway replica serves ``GET /demand`` on its admin port (not the client-facing one):

    {"instance": "5f0c...", "seq": 7, "uptimeSeconds": 812.4,
     "llms": {"team-a/support-bot": {"inflight": 0, "held": 3, "idleSeconds": 0.0,
                                     "holdingSeconds": 1.2, "coldStarts": 2,
                                     "lastColdStartSeconds": 6.8,
                                     "lastColdStartAt": "2026-11-30T10:00:00Z"}}}

``?instance=ID&after=SEQ&wait=SECONDS`` turns it into a long poll: the answer comes when
``seq`` moves past SEQ (a request started waiting for an LLM at zero, or a cold start
finished), at once if ID is not this gateway process's (it restarted: its ``seq`` began
again), or after ``wait`` seconds, so the operator hears of a request held at zero within
milliseconds without the gateway ever writing to the API server. Why a pull and not an
annotation the gateway writes: the gateway then needs no write permission on LLMs (a patch
right on LLMs would let it rewrite any spec), the API server takes no write per request
burst, and the operator, which already reconciles the LLM, decides alone.

This module is the format and the pure combination of several replicas' reports; both the
gateway (`traffic`) and the operator import it, and it imports nothing of ours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DemandReport", "LLMDemand", "combine", "from_json", "to_json"]


@dataclass(frozen=True)
class LLMDemand:
    inflight: int = 0
    held: int = 0
    #: seconds since a request for this LLM last started or finished (0 while any is open);
    #: a gateway counts its own start as activity, so a restart never looks like idleness
    idle_seconds: float = 0.0
    #: how long the oldest held request has waited (0 when none is held)
    holding_seconds: float = 0.0
    cold_starts: int = 0
    last_cold_start_seconds: float | None = None
    last_cold_start_at: str | None = None


@dataclass(frozen=True)
class DemandReport:
    #: changes with every gateway process: a ``seq`` is only comparable within one
    instance: str = ""
    seq: int = 0
    uptime_seconds: float = 0.0
    llms: Mapping[str, LLMDemand] = field(default_factory=dict)


_FIELDS = {
    "inflight": "inflight",
    "held": "held",
    "idleSeconds": "idle_seconds",
    "holdingSeconds": "holding_seconds",
    "coldStarts": "cold_starts",
    "lastColdStartSeconds": "last_cold_start_seconds",
    "lastColdStartAt": "last_cold_start_at",
}


def to_json(report: DemandReport) -> dict[str, Any]:
    llms: dict[str, Any] = {}
    for key, d in sorted(report.llms.items()):
        entry = {wire: getattr(d, attr) for wire, attr in _FIELDS.items()}
        llms[key] = {k: v for k, v in entry.items() if v is not None}
    return {
        "instance": report.instance,
        "seq": report.seq,
        "uptimeSeconds": report.uptime_seconds,
        "llms": llms,
    }


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    return value


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name}: expected a finite non-negative number, got {value!r}")
    return number


def from_json(data: Any) -> DemandReport:
    """Parse and check a report; ValueError on anything malformed (it is network input)."""
    if not isinstance(data, Mapping):
        raise ValueError("demand report: expected an object")
    llms_raw = data.get("llms", {})
    if not isinstance(llms_raw, Mapping):
        raise ValueError("llms: expected an object")
    llms: dict[str, LLMDemand] = {}
    for key, raw in llms_raw.items():
        if not isinstance(key, str) or key.count("/") != 1 or not isinstance(raw, Mapping):
            raise ValueError(f"llms: bad entry {key!r}")
        at = raw.get("lastColdStartAt")
        cold = raw.get("lastColdStartSeconds")
        llms[key] = LLMDemand(
            inflight=_count(raw.get("inflight", 0), f"{key}.inflight"),
            held=_count(raw.get("held", 0), f"{key}.held"),
            idle_seconds=_seconds(raw.get("idleSeconds", 0), f"{key}.idleSeconds"),
            holding_seconds=_seconds(raw.get("holdingSeconds", 0), f"{key}.holdingSeconds"),
            cold_starts=_count(raw.get("coldStarts", 0), f"{key}.coldStarts"),
            last_cold_start_seconds=None
            if cold is None
            else _seconds(cold, f"{key}.lastColdStartSeconds"),
            last_cold_start_at=str(at)[:64] if at is not None else None,
        )
    instance = data.get("instance", "")
    if not isinstance(instance, str) or len(instance) > 64:
        raise ValueError("instance: expected a short string")
    return DemandReport(
        instance=instance,
        seq=_count(data.get("seq", 0), "seq"),
        uptime_seconds=_seconds(data.get("uptimeSeconds", 0), "uptimeSeconds"),
        llms=llms,
    )


def combine(reports: Sequence[DemandReport]) -> dict[str, LLMDemand]:
    """One view over all gateway replicas: counts add up, idleness is the least idle
    replica's, the latest cold start wins (RFC 3339 UTC stamps compare as strings).

    An LLM a replica does not mention is one it has not seen yet (it just started): the
    replica's uptime bounds the idleness the operator may assume for it.
    """
    keys = sorted({k for r in reports for k in r.llms})
    out: dict[str, LLMDemand] = {}
    for key in keys:
        parts = [r.llms.get(key) for r in reports]
        seen = [p for p in parts if p is not None]
        idle = min(
            p.idle_seconds if p is not None else r.uptime_seconds
            for p, r in zip(parts, reports, strict=True)
        )
        latest = max(seen, key=lambda p: p.last_cold_start_at or "")
        out[key] = LLMDemand(
            inflight=sum(p.inflight for p in seen),
            held=sum(p.held for p in seen),
            idle_seconds=idle,
            holding_seconds=max(p.holding_seconds for p in seen),
            cold_starts=sum(p.cold_starts for p in seen),
            last_cold_start_seconds=latest.last_cold_start_seconds,
            last_cold_start_at=latest.last_cold_start_at,
        )
    return out
