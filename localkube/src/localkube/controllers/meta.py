"""Pure helpers on object metadata shared by every controller.

Label selectors, owner references, conditions and timestamps follow the Kubernetes API
conventions; keeping them here (pure, no I/O) lets each controller's decision functions be
unit-tested on plain dicts.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from collections.abc import Mapping
from typing import Any

from kubellm.api.timestamps import format_time, parse_time

__all__ = [
    "controller_ref",
    "find_condition",
    "format_time",
    "is_owned_by",
    "key_of",
    "match_selector",
    "now_str",
    "owner_reference",
    "parse_time",
    "random_suffix",
    "selector_to_string",
    "set_condition",
]

JSON = dict[str, Any]
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's generateName alphabet


def now_str(now: dt.datetime | None = None) -> str:
    """RFC 3339 to the second, UTC, as Kubernetes writes timestamps (`format_time` and
    `parse_time` are kubellm's own, re-exported for the controllers)."""
    return format_time(now or dt.datetime.now(dt.UTC))


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(n))


def key_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _match_expression(labels: Mapping[str, str], expr: Mapping[str, Any]) -> bool:
    key = expr.get("key", "")
    op = expr.get("operator", "")
    values = list(expr.get("values") or [])
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def match_selector(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """metav1.LabelSelector semantics; an empty or missing selector matches nothing here.

    (The API allows an empty selector to mean "everything" for some kinds, but every
    workload kind we control requires a non-empty one, and a Service without a selector
    has no automatic endpoints.)
    """
    if not selector:
        return False
    labels = labels or {}
    match_labels = selector.get("matchLabels") or {}
    exprs = selector.get("matchExpressions") or []
    if not match_labels and not exprs:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    return all(_match_expression(labels, e) for e in exprs)


def match_labels(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    """A Service-style selector (a plain map); empty matches nothing."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def selector_to_string(selector: Mapping[str, Any] | None) -> str:
    """The `labelSelector` query form of a LabelSelector (used by /scale and lists)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        op, key, values = e.get("operator"), e.get("key"), ",".join(e.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True) -> JSON:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def controller_ref(obj: Mapping[str, Any]) -> JSON | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def is_owned_by(obj: Mapping[str, Any], owner_uid: str) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == owner_uid


def find_condition(conditions: list[JSON] | None, ctype: str) -> JSON | None:
    for c in conditions or []:
        if c.get("type") == ctype:
            return c
    return None


def set_condition(
    conditions: list[JSON] | None,
    ctype: str,
    status: str,
    reason: str,
    message: str,
    *,
    now: str | None = None,
    update_time: bool = False,
) -> list[JSON]:
    """Return a new list with the condition set; lastTransitionTime moves only on a flip.

    `update_time` adds/refreshes `lastUpdateTime` (Deployments and Jobs carry it).
    """
    now = now or now_str()
    out: list[JSON] = []
    found = False
    for c in conditions or []:
        if c.get("type") != ctype:
            out.append(c)
            continue
        found = True
        new = dict(c, status=status, reason=reason, message=message)
        if c.get("status") != status:
            new["lastTransitionTime"] = now
        if update_time and (c.get("status") != status or c.get("reason") != reason):
            new["lastUpdateTime"] = now
        out.append(new)
    if not found:
        new = {"type": ctype, "status": status, "reason": reason, "message": message}
        if update_time:
            new["lastUpdateTime"] = now
        new["lastTransitionTime"] = now
        out.append(new)
    return out


def random_string(n: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(n))
