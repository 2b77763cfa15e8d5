"""Service-level objectives and durations, parsed from the strings people and the operator write.

The load-test gate is configured with one flat string (``--slo p95LatencyMs=500,maxErrorRate=0.01``)
because that is what fits in a Job's command line and in an environment variable, and
durations are Kubernetes-style strings (``60s``, ``2m``, ``1m30s``). Both parsers are pure and
raise ``InputError`` with a message that names the offending input, so that a typo in a
manifest becomes an exit code 2 with a readable reason, never a silently ignored objective.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "OBJECTIVE_NAMES",
    "InputError",
    "Objectives",
    "format_duration",
    "parse_duration",
    "parse_slo",
]


class InputError(ValueError):
    """A user-supplied setting is malformed; the message names the input and what was wrong."""


@dataclass(frozen=True)
class Objectives:
    """What a release must achieve; ``None`` means the objective is not set.

    Absolute objectives are judged on the candidate's figures alone; the relative one
    (``max_latency_regression_percent``) compares the candidate's p95 latency with the
    baseline (production) measured in the same window.
    """

    p95_latency_ms: float | None = None
    max_error_rate: float | None = None
    min_requests_per_second: float | None = None
    p95_time_to_first_token_ms: float | None = None
    min_tokens_per_second: float | None = None
    max_latency_regression_percent: float | None = None

    def items(self) -> Iterator[tuple[str, float]]:
        """(camelCase name, value) of every objective that is set, in declaration order."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                yield _CAMEL[f.name], value

    def to_dict(self) -> dict[str, float]:
        return dict(self.items())

    @property
    def is_empty(self) -> bool:
        return not any(True for _ in self.items())


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.capitalize() for part in rest)


# Public (camelCase) names, as written in the LLM resource and on the command line.
_CAMEL: dict[str, str] = {f.name: _camel(f.name) for f in fields(Objectives)}
_CAMEL["p95_time_to_first_token_ms"] = "p95TimeToFirstTokenMs"
_SNAKE: dict[str, str] = {camel: snake for snake, camel in _CAMEL.items()}
OBJECTIVE_NAMES: tuple[str, ...] = tuple(_CAMEL.values())

# Objectives whose value is a fraction rather than an unbounded non-negative amount.
_FRACTIONS = {"maxErrorRate"}


def parse_slo(text: str, *, source: str = "--slo") -> Objectives:
    """Parse ``name=value,name=value`` into ``Objectives``.

    Names are the camelCase objective names (``OBJECTIVE_NAMES``); values are non-negative
    numbers (``maxErrorRate`` a fraction in [0, 1]). Whitespace around items is ignored.
    Raises ``InputError`` for an empty string, an item without ``=``, an unknown or repeated
    name, or a value that is not a finite number in range; the message quotes ``source``.
    """
    if not text or not text.strip():
        raise InputError(
            f"{source}: no objectives given; expected name=value pairs such as "
            "p95LatencyMs=500,maxErrorRate=0.01"
        )
    values: dict[str, Any] = {}
    for raw_item in text.split(","):
        item = raw_item.strip()
        if not item:
            raise InputError(f"{source}: empty item in {text!r} (stray comma?)")
        name, sep, raw_value = item.partition("=")
        name, raw_value = name.strip(), raw_value.strip()
        if not sep or not name:
            raise InputError(f"{source}: {item!r} is not name=value (in {text!r})")
        if name not in _SNAKE:
            raise InputError(
                f"{source}: unknown objective {name!r}; known objectives: "
                + ", ".join(OBJECTIVE_NAMES)
            )
        if _SNAKE[name] in values:
            raise InputError(f"{source}: objective {name!r} given twice")
        try:
            value = float(raw_value)
        except ValueError:
            raise InputError(
                f"{source}: {name}={raw_value!r} is not a number (in {text!r})"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise InputError(f"{source}: {name}={raw_value} must be a finite number >= 0")
        if name in _FRACTIONS and value > 1:
            raise InputError(
                f"{source}: {name}={raw_value} is a fraction of requests and must be "
                "between 0 and 1 (e.g. 0.01 for 1%)"
            )
        values[_SNAKE[name]] = value
    return Objectives(**values)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_UNIT_ORDER = ("h", "m", "s", "ms")


def parse_duration(text: str, *, source: str = "duration", allow_zero: bool = False) -> float:
    """Parse ``60s``, ``2m``, ``1m30s``, ``1h``, ``500ms``, ``2.5s`` into seconds.

    Units must appear at most once and from largest to smallest, as in Go and Kubernetes
    durations. A bare number is refused (is ``60`` seconds or minutes?), and so is zero
    unless ``allow_zero``. Raises ``InputError`` naming ``source`` and the text.
    """
    stripped = (text or "").strip()
    hint = "expected a duration such as 60s, 2m or 1m30s"
    if not stripped:
        raise InputError(f"{source}: empty duration; {hint}")
    if re.fullmatch(r"\d+(?:\.\d+)?", stripped):
        raise InputError(f"{source}: {text!r} has no unit; {hint} (e.g. {stripped}s)")
    pos = 0
    total = 0.0
    last_rank = -1
    for match in _DURATION_PART.finditer(stripped):
        if match.start() != pos:
            break
        amount, unit = match.groups()
        rank = _UNIT_ORDER.index(unit)
        if rank <= last_rank:
            raise InputError(f"{source}: {text!r} repeats or misorders units; {hint}")
        last_rank = rank
        total += float(amount) * _UNIT_SECONDS[unit]
        pos = match.end()
    if pos != len(stripped) or last_rank < 0:
        raise InputError(f"{source}: {text!r} is not a duration; {hint}")
    if total == 0 and not allow_zero:
        raise InputError(f"{source}: {text!r} must be longer than zero")
    return total


def format_duration(seconds: float) -> str:
    """Render seconds the way ``parse_duration`` reads them (``90`` -> ``1m30s``)."""
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    frac = seconds - whole
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if secs or frac or not out:
        out += f"{secs + frac:g}s"
    return out
