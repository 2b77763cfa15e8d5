"""Reading what a child left behind: the JSON summaries of `kubellm train` and
`kubellm loadtest` in their termination messages. Anything unreadable fails closed.

A termination message is written by a container, which may run an image the LLM's author
chose: it is untrusted input. Only the fields the operator uses are kept, each coerced to
its type (a list where a string belongs is dropped, a list of strings where one message
belongs is joined, a NaN is no number), and every string is redacted and bounded, so no
value in it can break the status write or leak a URI's userinfo into it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from kubellm.api.status import LoadTestFigures
from kubellm.redaction import redact

__all__ = ["number", "parse_loadtest_message", "parse_training_message", "text"]

_MAX_TEXT = 1000
_VERSION = re.compile(r"^[0-9]{1,12}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NUMBERS = ("eval_loss", "evalLoss", "train_loss", "trainLoss", "loss")


def _json(message: str | None) -> dict[str, Any]:
    if not message:
        return {}
    try:
        value = json.loads(message)
    except ValueError:
        return {"error": message.strip()[-500:]}
    return value if isinstance(value, dict) else {}


def text(value: Any, limit: int = _MAX_TEXT) -> str | None:
    """A message for status: a string, or a list of scalars joined with "; "; redacted and
    bounded. Anything else (dicts, nested lists) is None."""
    if isinstance(value, list | tuple):
        parts = [text(v, limit) for v in value if not isinstance(v, list | tuple | dict)]
        value = "; ".join(p for p in parts if p)
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        return None
    if isinstance(value, int | float | str):
        out = redact(str(value)).strip()
        return out[:limit] if out else None
    return None


def _identifier(value: Any, pattern: re.Pattern[str]) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and pattern.match(value) else None


def parse_training_message(message: str | None) -> dict[str, Any]:
    """The JSON summary `kubellm train` leaves in its termination message, reduced to the
    fields the operator reads, each of its type: ``model_version`` (digits), ``run_id``,
    ``error`` (text) and the losses (finite numbers). Missing or wrongly typed: absent."""
    data = _json(message)
    out: dict[str, Any] = {}
    version = _identifier(data.get("model_version"), _VERSION) or _identifier(
        data.get("modelVersion"), _VERSION
    )
    if version:
        out["model_version"] = version
    run_id = _identifier(data.get("run_id"), _RUN_ID) or _identifier(data.get("runId"), _RUN_ID)
    if run_id:
        out["run_id"] = run_id
    error = text(data.get("error"))
    if error:
        out["error"] = error
    for key in _NUMBERS:
        value = number(data, key)
        if value is not None:
            out[key] = value
    return out


def number(data: dict[str, Any], *keys: str) -> float | None:
    """The first of ``keys`` that holds a finite number (bools, strings, NaN do not count)."""
    for key in keys:
        value = data.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        try:
            as_float = float(value)
        except OverflowError:  # an int beyond any float
            continue
        if math.isfinite(as_float):
            return as_float
    return None


def parse_loadtest_message(message: str | None, exit_code: int | None) -> LoadTestFigures:
    """The verdict summary of `kubellm loadtest`; anything unreadable is a failed gate."""
    data = _json(message)
    figures = data.get("figures") if isinstance(data.get("figures"), dict) else data
    assert isinstance(figures, dict)
    raw_verdict = data.get("verdict") or data.get("status") or ""
    verdict = raw_verdict if isinstance(raw_verdict, str) else ""
    if exit_code is not None and exit_code != 0 and verdict == "pass":
        verdict = "fail"  # the exit code is the contract; never promote on a non-zero exit
    if verdict not in ("pass", "fail", "error"):
        verdict = "error" if exit_code != 0 else "fail"
    raw_reasons = data.get("reasons")
    if not isinstance(raw_reasons, list):
        raw_reasons = [raw_reasons]
    reasons = [r for r in (text(item, 500) for item in raw_reasons) if r]
    if verdict != "pass" and not reasons:
        reasons = [text(data.get("error")) or "load test produced no readable verdict"]
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
        requests=int(requests) if requests is not None and abs(requests) < 2**53 else None,
        reasons=reasons[:10],
    )
