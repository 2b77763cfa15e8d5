"""Live traffic per release, kept by the second, so a canary step is judged on its own window.

A canary step compares the candidate with production over the same stretch of time: from
the step's start (a wall-clock instant the operator keeps in the LLM's status) until now.
Prometheus counters are cumulative per process, so judging a window from them means keeping
a snapshot of every gateway replica's counters at the step's start somewhere that survives
an operator restart; instead each gateway keeps its answers in one-second slots for
``horizon`` seconds, and ``GET /traffic?llm=NAMESPACE/NAME&since=EPOCH`` on the admin port
sums the slots since ``since``, per release:

    {"instance": "5f0c...", "now": 1796000000.2,
     "releases": {"3": {"requests": 120, "errors": 1, "tokens": 3800, "seconds": 41.2,
                        "latency": {"52": 3, "53": 117}, "ttfb": {"30": 120}}}}

``latency`` and ``ttfb`` are sparse histograms: bucket ``i`` holds durations in
``(1 ms * 1.1**(i-1), 1 ms * 1.1**i]``, so a p95 read from them is within 10% of the true
one (Prometheus' fixed buckets are too coarse to judge "p95 <= 500 ms"). The operator adds
up the replicas' answers (`combine`); a gateway that restarted within the window answers
for the part it saw, so the window counts fewer requests and a step fails closed rather
than passing on figures it never saw.

``errors`` are answers with a 5xx status, and answers cut short by a pod that failed
mid-stream; a client that went away (499) and a client's mistake (4xx) are not the
release's errors. ``tokens`` are the completion tokens the answers carried (``usage`` of a
JSON answer; the number of streamed events of a streamed one) and ``seconds`` the time the
answers that carried tokens took, so ``tokens / seconds`` is the generation speed a client
saw.

This module imports nothing of ours: the gateway records into it, the operator reads its
wire format.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ReleaseTraffic", "TrafficWindows", "combine", "from_json", "to_json"]

_BASE = 0.001  # seconds: the upper bound of bucket 0
_RATIO = 1.1
_MAX_BUCKET = 250  # 1 ms * 1.1**250: far beyond any answer


def bucket_of(seconds: float) -> int:
    if seconds <= _BASE:
        return 0
    return min(_MAX_BUCKET, math.ceil(math.log(seconds / _BASE) / math.log(_RATIO) - 1e-9))


def _upper(bucket: int) -> float:
    return _BASE * _RATIO**bucket


def _add(a: Mapping[int, int], b: Mapping[int, int]) -> dict[int, int]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out


def quantile_ms(histogram: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a sparse histogram, in ms, interpolated linearly inside
    its bucket; None when the histogram is empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if seen + count >= rank:
            low = 0.0 if bucket == 0 else _upper(bucket - 1)
            high = _upper(bucket)
            inside = (rank - seen) / count if count else 1.0
            return round((low + (high - low) * inside) * 1000.0, 3)
        seen += count
    return round(_upper(max(histogram)) * 1000.0, 3)  # pragma: no cover (rank <= total)


@dataclass(frozen=True)
class ReleaseTraffic:
    """What one release answered in a window."""

    requests: int = 0
    errors: int = 0
    tokens: int = 0
    #: seconds taken by the answers that carried tokens
    seconds: float = 0.0
    latency: Mapping[int, int] = field(default_factory=dict)
    ttfb: Mapping[int, int] = field(default_factory=dict)

    def __add__(self, other: ReleaseTraffic) -> ReleaseTraffic:
        return ReleaseTraffic(
            requests=self.requests + other.requests,
            errors=self.errors + other.errors,
            tokens=self.tokens + other.tokens,
            seconds=self.seconds + other.seconds,
            latency=_add(self.latency, other.latency),
            ttfb=_add(self.ttfb, other.ttfb),
        )

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def p95_ms(self) -> float | None:
        return quantile_ms(self.latency, 0.95)

    @property
    def p95_ttfb_ms(self) -> float | None:
        return quantile_ms(self.ttfb, 0.95)

    @property
    def tokens_per_second(self) -> float | None:
        return round(self.tokens / self.seconds, 3) if self.seconds > 0 else None


class _Slot:
    __slots__ = ("errors", "latency", "requests", "seconds", "tokens", "ttfb")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.tokens = 0
        self.seconds = 0.0
        self.latency: dict[int, int] = {}
        self.ttfb: dict[int, int] = {}

    def frozen(self) -> ReleaseTraffic:
        return ReleaseTraffic(
            self.requests,
            self.errors,
            self.tokens,
            self.seconds,
            dict(self.latency),
            dict(self.ttfb),
        )


class TrafficWindows:
    """Per LLM and release, the answers of the last ``horizon`` seconds by the second."""

    def __init__(self, horizon: float = 7200.0, wall: Callable[[], float] = time.time) -> None:
        self.horizon = horizon
        self._wall = wall
        #: (llm, release) -> second -> slot, oldest second first
        self._slots: dict[tuple[str, str], OrderedDict[int, _Slot]] = {}

    def record(
        self,
        llm: str,
        release: str,
        *,
        error: bool,
        seconds: float,
        ttfb: float | None,
        tokens: int | None,
    ) -> None:
        now = self._wall()
        second = int(now)
        slots = self._slots.setdefault((llm, release), OrderedDict())
        while slots and next(iter(slots)) < now - self.horizon:
            slots.popitem(last=False)
        slot = slots.get(second)
        if slot is None:
            slot = slots[second] = _Slot()
        slot.requests += 1
        slot.errors += int(error)
        b = bucket_of(seconds)
        slot.latency[b] = slot.latency.get(b, 0) + 1
        if ttfb is not None:
            t = bucket_of(ttfb)
            slot.ttfb[t] = slot.ttfb.get(t, 0) + 1
        if tokens:
            slot.tokens += tokens
            slot.seconds += seconds

    def since(self, llm: str, since: float) -> dict[str, ReleaseTraffic]:
        """Each release's answers from ``since`` (epoch seconds) until now."""
        first = math.ceil(since)
        out: dict[str, ReleaseTraffic] = {}
        for (key, release), slots in self._slots.items():
            if key != llm:
                continue
            total = ReleaseTraffic()
            for second, slot in slots.items():
                if second >= first:
                    total = total + slot.frozen()
            if total.requests:
                out[release] = total
        return out

    def now(self) -> float:
        return self._wall()


def to_json(instance: str, now: float, releases: Mapping[str, ReleaseTraffic]) -> dict[str, Any]:
    return {
        "instance": instance,
        "now": now,
        "releases": {
            release: {
                "requests": t.requests,
                "errors": t.errors,
                "tokens": t.tokens,
                "seconds": round(t.seconds, 6),
                "latency": {str(k): v for k, v in sorted(t.latency.items())},
                "ttfb": {str(k): v for k, v in sorted(t.ttfb.items())},
            }
            for release, t in sorted(releases.items())
        },
    }


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    return value


def _histogram(raw: Any, name: str) -> dict[int, int]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{name}: expected an object")
    out: dict[int, int] = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not k.isdigit() or int(k) > _MAX_BUCKET:
            raise ValueError(f"{name}: bad bucket {k!r}")
        out[int(k)] = _count(v, f"{name}[{k}]")
    return out


def from_json(data: Any) -> dict[str, ReleaseTraffic]:
    """Parse one gateway's answer; ValueError on anything malformed (it is network input)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("releases", {}), Mapping):
        raise ValueError("traffic report: expected an object with releases")
    out: dict[str, ReleaseTraffic] = {}
    for release, raw in data.get("releases", {}).items():
        if not isinstance(release, str) or len(release) > 64 or not isinstance(raw, Mapping):
            raise ValueError(f"releases: bad entry {release!r}")
        seconds = raw.get("seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError(f"{release}.seconds: expected a number")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"{release}.seconds: expected a finite non-negative number")
        out[release] = ReleaseTraffic(
            requests=_count(raw.get("requests", 0), f"{release}.requests"),
            errors=_count(raw.get("errors", 0), f"{release}.errors"),
            tokens=_count(raw.get("tokens", 0), f"{release}.tokens"),
            seconds=float(seconds),
            latency=_histogram(raw.get("latency", {}), f"{release}.latency"),
            ttfb=_histogram(raw.get("ttfb", {}), f"{release}.ttfb"),
        )
    return out


def combine(reports: Iterable[Mapping[str, ReleaseTraffic]]) -> dict[str, ReleaseTraffic]:
    """One view over every gateway replica: each release's figures added up."""
    out: dict[str, ReleaseTraffic] = {}
    for report in reports:
        for release, traffic in report.items():
            out[release] = out.get(release, ReleaseTraffic()) + traffic
    return out
