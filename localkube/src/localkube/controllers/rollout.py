"""Deployment rollout arithmetic (pure), after kube-controller-manager's deployment utils.

A rolling update keeps the total number of pods at most `replicas + maxSurge` and the
available ones at least `replicas - maxUnavailable`: scale the new ReplicaSet up into the
surge room, then scale old ReplicaSets down by what availability allows, oldest first.
The template hash names the ReplicaSet (`<deploy>-<hash>`) and labels its pods
(`pod-template-hash`), so a template change makes a new ReplicaSet and a revert reuses
the old one.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "HASH_LABEL",
    "ReplicaSetView",
    "new_rs_replicas",
    "old_rs_scale_down",
    "resolve_fenceposts",
    "rollout_complete",
    "template_hash",
    "templates_equal",
]

JSON = dict[str, Any]
HASH_LABEL = "pod-template-hash"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _strip_hash(template: Mapping[str, Any]) -> JSON:
    t = copy.deepcopy(dict(template))
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return t


def template_hash(template: Mapping[str, Any], collision_count: int = 0) -> str:
    """A short stable hash of the pod template (the apiserver's safe alphabet)."""
    text = json.dumps(_strip_hash(template), sort_keys=True, separators=(",", ":"))
    value = _fnv32a((text + (str(collision_count) if collision_count else "")).encode())
    out = []
    while value:
        value, r = divmod(value, len(_SAFE))
        out.append(_SAFE[r])
    return "".join(out)[:10] or "0"


def templates_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return _strip_hash(a) == _strip_hash(b)


def _scaled(value: Any, total: int, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        frac = float(text[:-1]) * total / 100.0
        return math.ceil(frac) if round_up else math.floor(frac)
    return int(text)


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, replicas: int) -> tuple[int, int]:
    """maxSurge rounds up, maxUnavailable down; both zero would deadlock, so unavailable=1."""
    surge = _scaled("25%" if max_surge is None else max_surge, replicas, True)
    unavailable = _scaled("25%" if max_unavailable is None else max_unavailable, replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


@dataclass
class ReplicaSetView:
    """What the rollout needs of a ReplicaSet."""

    name: str
    spec_replicas: int
    available: int
    created: str = ""  # creationTimestamp, for oldest-first ordering


def new_rs_replicas(
    replicas: int, max_surge: int, new: ReplicaSetView, all_rs: list[ReplicaSetView]
) -> int:
    """How many replicas the new ReplicaSet should ask for now."""
    total = sum(rs.spec_replicas for rs in all_rs)
    max_total = replicas + max_surge
    if new.spec_replicas > replicas:
        return replicas
    if total >= max_total:
        return new.spec_replicas
    return min(new.spec_replicas + (max_total - total), replicas)


def old_rs_scale_down(
    replicas: int, max_unavailable: int, new: ReplicaSetView, old: list[ReplicaSetView]
) -> dict[str, int]:
    """New spec.replicas for old ReplicaSets (only those that change)."""
    all_rs = [new, *old]
    all_count = sum(rs.spec_replicas for rs in all_rs)
    min_available = replicas - max_unavailable
    new_unavailable = new.spec_replicas - new.available
    max_scaled_down = all_count - min_available - new_unavailable
    out: dict[str, int] = {}
    if max_scaled_down <= 0:
        return out
    ordered = sorted(old, key=lambda rs: (rs.created, rs.name))
    # first clean up unhealthy (unavailable) replicas of old sets
    for rs in ordered:
        if max_scaled_down <= 0:
            break
        unhealthy = rs.spec_replicas - rs.available
        if unhealthy <= 0:
            continue
        cut = min(unhealthy, max_scaled_down)
        out[rs.name] = rs.spec_replicas - cut
        max_scaled_down -= cut
    current = {rs.name: out.get(rs.name, rs.spec_replicas) for rs in old}
    available = new.available + sum(rs.available for rs in old)
    if available <= min_available:
        return out
    budget = available - min_available
    for rs in ordered:
        if budget <= 0:
            break
        if current[rs.name] == 0:
            continue
        cut = min(current[rs.name], budget)
        out[rs.name] = current[rs.name] - cut
        budget -= cut
    return out


def rollout_complete(replicas: int, updated: int, total: int, available: int) -> bool:
    """The new ReplicaSet has every replica, all available, and no old pods remain."""
    return updated == replicas and total == replicas and available >= replicas
