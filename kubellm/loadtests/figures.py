"""The measured figures of one load-test run, and their JSON form.

Locust runs in its own (gevent-patched) process; it hands its measurements to the gate as a
JSON file. This module is that contract: the locustfile builds a ``Figures`` from Locust's
stats and writes it, the runner reads it back, the verdict judges it and the report
publishes it. Rates are derived here, from counts and the measured window, so that every
consumer computes requests/s, tokens/s and the error rate the same way.

Names in the JSON form are camelCase and match the objective names of ``slo.py``
(``p95LatencyMs`` the figure, ``p95LatencyMs`` the objective), so a reader can put the two
side by side.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["Figures", "Percentiles", "read_figures", "write_figures"]


@dataclass(frozen=True)
class Percentiles:
    """Latency distribution of one kind of measurement, in milliseconds."""

    count: int
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    avg: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Percentiles:
        return cls(
            count=int(data["count"]),
            **{f.name: float(data[f.name]) for f in fields(cls) if f.name != "count"},
        )


@dataclass(frozen=True)
class Figures:
    """What one Locust run measured inside its measurement window (warm-up excluded).

    ``latency`` is end-to-end request latency (for streamed responses: until the last byte);
    ``ttft`` and ``itl`` exist only when streamed requests completed. ``tokens`` is ``None``
    when some successful response did not say how many tokens it generated, so that a
    tokens/s objective is judged on a complete count or not at all. ``completed`` is False
    when the run stopped before the end of its planned window (killed, crashed, timed out).
    """

    requests: int
    failures: int
    duration_s: float
    planned_duration_s: float
    completed: bool
    latency: Percentiles | None = None
    ttft: Percentiles | None = None
    itl: Percentiles | None = None
    tokens: int | None = None
    users: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    # Locust saw a load-generating process above 90% CPU: latencies include client-side
    # queueing, so they are pessimistic (never flattering); more --workers would help.
    generator_saturated: bool = False

    @property
    def error_rate(self) -> float | None:
        return self.failures / self.requests if self.requests else None

    @property
    def requests_per_second(self) -> float | None:
        return self.requests / self.duration_s if self.duration_s > 0 else None

    @property
    def tokens_per_second(self) -> float | None:
        if self.tokens is None or self.duration_s <= 0:
            return None
        return self.tokens / self.duration_s

    @property
    def p95_latency_ms(self) -> float | None:
        return self.latency.p95 if self.latency else None

    @property
    def p95_time_to_first_token_ms(self) -> float | None:
        return self.ttft.p95 if self.ttft else None

    def headline(self) -> dict[str, float | int | None]:
        """The figures an operator and a registry reader look at first (camelCase)."""
        lat = self.latency
        return {
            "requests": self.requests,
            "failures": self.failures,
            "errorRate": _round(self.error_rate, 6),
            "requestsPerSecond": _round(self.requests_per_second, 3),
            "tokensPerSecond": _round(self.tokens_per_second, 3),
            "p50LatencyMs": lat.p50 if lat else None,
            "p95LatencyMs": lat.p95 if lat else None,
            "p99LatencyMs": lat.p99 if lat else None,
            "p95TimeToFirstTokenMs": self.ttft.p95 if self.ttft else None,
            "p95InterTokenLatencyMs": self.itl.p95 if self.itl else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.headline(),
            "durationSeconds": round(self.duration_s, 3),
            "plannedDurationSeconds": round(self.planned_duration_s, 3),
            "completed": self.completed,
            "users": self.users,
            "tokens": self.tokens,
            "latencyMs": self.latency.to_dict() if self.latency else None,
            "timeToFirstTokenMs": self.ttft.to_dict() if self.ttft else None,
            "interTokenLatencyMs": self.itl.to_dict() if self.itl else None,
            "errors": self.errors,
            "loadGeneratorSaturated": self.generator_saturated,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figures:
        def pct(key: str) -> Percentiles | None:
            value = data.get(key)
            return Percentiles.from_dict(value) if value else None

        tokens = data.get("tokens")
        return cls(
            requests=int(data["requests"]),
            failures=int(data["failures"]),
            duration_s=float(data["durationSeconds"]),
            planned_duration_s=float(data["plannedDurationSeconds"]),
            completed=bool(data["completed"]),
            latency=pct("latencyMs"),
            ttft=pct("timeToFirstTokenMs"),
            itl=pct("interTokenLatencyMs"),
            tokens=int(tokens) if tokens is not None else None,
            users=int(data.get("users", 0)),
            errors=list(data.get("errors") or []),
            generator_saturated=bool(data.get("loadGeneratorSaturated", False)),
        )


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


def write_figures(path: Path, figures: Figures) -> None:
    """Write atomically (a half-written file must read as missing, never as figures)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(figures.to_dict(), indent=2))
    tmp.replace(path)


def read_figures(path: Path) -> Figures | None:
    """The figures at ``path``, or None when the run left none (or an unreadable file)."""
    try:
        return Figures.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
