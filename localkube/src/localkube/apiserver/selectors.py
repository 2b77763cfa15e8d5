"""Label and field selectors, parsed once per request and matched per object.

Label selectors are parsed by :mod:`.labelparsing`, as apimachinery parses them (`=`, `==`,
`!=`, `in`, `notin`, `key`, `!key`, `>`, `<`). Field selectors support `metadata.name` and
`metadata.namespace` on every kind plus the per-kind fields kubectl describe and friends use;
any other field is a 400, as upstream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ApiError
from .labelparsing import parse_label_selector
from .meta import dig

__all__ = ["FieldSelector", "LabelSelector", "match_label_selector_object"]


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


class LabelSelector:
    """A parsed `labelSelector` query string (400 for one kube-apiserver would refuse)."""

    def __init__(self, text: str | None) -> None:
        self.reqs = parse_label_selector(text or "")

    def __bool__(self) -> bool:
        return bool(self.reqs)

    def matches(self, obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in self.reqs)


def match_label_selector_object(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Match a `LabelSelector` object (`matchLabels` + `matchExpressions`); empty matches all."""
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


_Getter = Callable[[dict[str, Any]], Any]

_COMMON_FIELDS: dict[str, _Getter] = {
    "metadata.name": lambda o: dig(o, "metadata", "name"),
    "metadata.namespace": lambda o: dig(o, "metadata", "namespace"),
}

_KIND_FIELDS: dict[str, dict[str, _Getter]] = {
    "/events": {
        "involvedObject.kind": lambda o: dig(o, "involvedObject", "kind"),
        "involvedObject.name": lambda o: dig(o, "involvedObject", "name"),
        "involvedObject.namespace": lambda o: dig(o, "involvedObject", "namespace"),
        "involvedObject.uid": lambda o: dig(o, "involvedObject", "uid"),
        "involvedObject.apiVersion": lambda o: dig(o, "involvedObject", "apiVersion"),
        "involvedObject.fieldPath": lambda o: dig(o, "involvedObject", "fieldPath"),
        "involvedObject.resourceVersion": lambda o: dig(o, "involvedObject", "resourceVersion"),
        "reason": lambda o: o.get("reason"),
        "type": lambda o: o.get("type"),
        "source": lambda o: dig(o, "source", "component"),
        "reportingComponent": lambda o: o.get("reportingComponent"),
    },
    "events.k8s.io/events": {
        "regarding.kind": lambda o: dig(o, "regarding", "kind"),
        "regarding.name": lambda o: dig(o, "regarding", "name"),
        "regarding.namespace": lambda o: dig(o, "regarding", "namespace"),
        "regarding.uid": lambda o: dig(o, "regarding", "uid"),
        "reason": lambda o: o.get("reason"),
        "type": lambda o: o.get("type"),
    },
    "/pods": {
        "status.phase": lambda o: dig(o, "status", "phase"),
        "spec.nodeName": lambda o: dig(o, "spec", "nodeName"),
        "spec.restartPolicy": lambda o: dig(o, "spec", "restartPolicy"),
        "spec.serviceAccountName": lambda o: dig(o, "spec", "serviceAccountName"),
        "status.podIP": lambda o: dig(o, "status", "podIP"),
        "spec.schedulerName": lambda o: dig(o, "spec", "schedulerName"),
        "spec.hostNetwork": lambda o: "true" if dig(o, "spec", "hostNetwork") else "false",
        "status.nominatedNodeName": lambda o: dig(o, "status", "nominatedNodeName"),
    },
    "/namespaces": {"status.phase": lambda o: dig(o, "status", "phase")},
    "/secrets": {"type": lambda o: o.get("type")},
    "/services": {
        "spec.clusterIP": lambda o: dig(o, "spec", "clusterIP"),
        "spec.type": lambda o: dig(o, "spec", "type"),
    },
    "batch/jobs": {"status.successful": lambda o: dig(o, "status", "succeeded") or 0},
}
# kinds whose storage converts field labels itself: upstream's message for others differs
_CONVERTED = {"/pods", "/events", "events.k8s.io/events", "/namespaces", "/secrets", "/services"}


def _unsupported_field(name: str, resource_key: str, kind: str, builtin: bool) -> str:
    """kube-apiserver's words for a field selector on a field the kind does not index."""
    if resource_key == "batch/jobs":
        return f'field label "{name}" not supported for {kind}'
    if resource_key in _CONVERTED or not builtin:
        return f"field label not supported: {name}"
    return f'"{name}" is not a known field selector: only "metadata.name", "metadata.namespace"'


class FieldSelector:
    """A parsed `fieldSelector` for one resource key; unknown fields give 400."""

    def __init__(
        self, text: str | None, resource_key: str, kind: str, *, builtin: bool = True
    ) -> None:
        self.reqs: list[tuple[_Getter, bool, str]] = []
        fields = {**_COMMON_FIELDS, **_KIND_FIELDS.get(resource_key, {})}
        for part in _split_top(text or ""):
            if "!=" in part:
                name, _, value = part.partition("!=")
                negate = True
            elif "==" in part:
                name, _, value = part.partition("==")
                negate = False
            elif "=" in part:
                name, _, value = part.partition("=")
                negate = False
            else:
                raise ApiError(400, f"invalid selector: '{text}'; can't understand '{part}'")
            name = name.strip()
            getter = fields.get(name)
            if getter is None:
                raise ApiError(400, _unsupported_field(name, resource_key, kind, builtin))
            self.reqs.append((getter, negate, value.strip()))
        self.kind = kind

    def __bool__(self) -> bool:
        return bool(self.reqs)

    def matches(self, obj: dict[str, Any]) -> bool:
        for getter, negate, value in self.reqs:
            actual = getter(obj)
            actual_s = "" if actual is None else str(actual)
            if (actual_s == value) == negate:
                return False
        return True
