"""The HPA's arithmetic (pure): quantities, desired replicas, stabilization, scraping.

`desired = ceil(current * currentValue / targetValue)` per metric, the largest wins, no
change within a 10 % tolerance; scale-downs take the highest recommendation of the
stabilization window (300 s by default) so a short dip does not remove pods; the result
is clamped to [minReplicas, maxReplicas]. These are the rules of the real
horizontal-pod-autoscaler controller.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "clamp",
    "desired_replicas",
    "metric_from_text",
    "parse_quantity",
    "stabilize",
]

_SUFFIX = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QTY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: Any) -> float:
    """A Kubernetes quantity (`500m`, `2`, `1.5k`, `128Mi`) as a float."""
    if isinstance(value, int | float):
        return float(value)
    m = _QTY.match(str(value).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"invalid quantity {value!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def desired_replicas(current: int, ratios: Iterable[float], tolerance: float = 0.1) -> int:
    """The largest per-metric proposal; a ratio within tolerance keeps `current`."""
    proposals = []
    for ratio in ratios:
        if abs(ratio - 1.0) <= tolerance:
            proposals.append(current)
        else:
            proposals.append(math.ceil(current * ratio - 1e-9))
    return max(proposals) if proposals else current


def clamp(desired: int, minimum: int, maximum: int) -> tuple[int, str]:
    """Clamp to [min, max]; the reason names a limit that bit (or '' if none)."""
    if desired > maximum:
        return maximum, "TooManyReplicas"
    if desired < minimum:
        return minimum, "TooFewReplicas"
    return desired, ""


def stabilize(
    history: list[tuple[float, int]],
    now: float,
    proposal: int,
    current: int,
    down_window: float,
    up_window: float,
) -> int:
    """Apply stabilization windows to `proposal` given past `(time, proposal)` pairs."""
    recent_down = [r for t, r in history if now - t <= down_window] + [proposal]
    recent_up = [r for t, r in history if now - t <= up_window] + [proposal]
    if proposal < current:
        return min(current, max(recent_down))
    if proposal > current:
        return max(current, min(recent_up))
    return proposal


def metric_from_text(text: str, name: str) -> float | None:
    """Sum of the samples called `name` (or `name_total`) in Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    found = False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (name, f"{name}_total"):
                total += float(sample.value)
                found = True
    return total if found else None
