"""Reading what a child left behind: the JSON summaries of `kubellm train` and
`kubellm loadtest` in their termination messages. Anything unreadable fails closed."""

from __future__ import annotations

import json
from typing import Any

from kubellm.api.status import LoadTestFigures

__all__ = ["number", "parse_loadtest_message", "parse_training_message"]


def _json(message: str | None) -> dict[str, Any]:
    if not message:
        return {}
    try:
        value = json.loads(message)
    except ValueError:
        return {"error": message.strip()[-500:]}
    return value if isinstance(value, dict) else {}


def parse_training_message(message: str | None) -> dict[str, Any]:
    """The JSON summary `kubellm train` leaves in its termination message."""
    return _json(message)


def number(data: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def parse_loadtest_message(message: str | None, exit_code: int | None) -> LoadTestFigures:
    """The verdict summary of `kubellm loadtest`; anything unreadable is a failed gate."""
    data = _json(message)
    figures = data.get("figures") if isinstance(data.get("figures"), dict) else data
    assert isinstance(figures, dict)
    verdict = str(data.get("verdict") or data.get("status") or "")
    if exit_code is not None and exit_code != 0 and verdict == "pass":
        verdict = "fail"  # the exit code is the contract; never promote on a non-zero exit
    if verdict not in ("pass", "fail", "error"):
        verdict = "error" if exit_code != 0 else "fail"
    reasons = [str(r) for r in data.get("reasons") or [] if r]
    if verdict != "pass" and not reasons:
        reasons = [str(data.get("error") or "load test produced no readable verdict")]
    requests = number(figures, "requests")
    return LoadTestFigures(
        verdict=verdict,
        p50_ms=number(figures, "p50LatencyMs", "p50_ms"),
        p95_ms=number(figures, "p95LatencyMs", "p95_ms"),
        p99_ms=number(figures, "p99LatencyMs", "p99_ms"),
        p95_ttft_ms=number(figures, "p95TimeToFirstTokenMs", "p95_ttft_ms"),
        requests_per_second=number(figures, "requestsPerSecond", "rps"),
        tokens_per_second=number(figures, "tokensPerSecond", "tokens_per_s"),
        error_rate=number(figures, "errorRate", "error_rate"),
        requests=int(requests) if requests is not None else None,
        reasons=reasons[:10],
    )
