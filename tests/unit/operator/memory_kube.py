"""An in-memory `KubeApi` for driving the real reconciler without any server.

Objects live in a dict keyed by (kind, namespace, name); label selectors of the form
``k=v[,k=v]`` are honoured; status patches are RFC 7386 merge patches. Every created Event
is kept, so tests can read what a user would see in `kubectl describe`.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from kubellm.operator.kube import ApiError


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


class MemoryKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], str] = {}
        self._serial = itertools.count(1)

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        meta.setdefault("uid", f"uid-{next(self._serial)}")
        self.objects[(obj["kind"], meta["namespace"], meta["name"])] = obj
        return obj

    @property
    def events(self) -> list[dict[str, Any]]:
        return [o for (kind, _, _), o in self.objects.items() if kind == "Event"]

    def list(
        self, kind: str, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        wanted = dict(p.split("=", 1) for p in (label_selector or "").split(",") if p)
        out = []
        for (k, ns, _), obj in self.objects.items():
            labels = obj["metadata"].get("labels") or {}
            if k == kind and ns == namespace and all(labels.get(a) == b for a, b in wanted.items()):
                out.append(copy.deepcopy(obj))
        return out

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if "name" not in meta:
            meta["name"] = f"{meta.get('generateName', 'obj-')}{next(self._serial)}"
        if (kind, namespace, meta["name"]) in self.objects:
            raise ApiError(409, "AlreadyExists", f"{kind} {meta['name']} exists")
        obj.setdefault("kind", kind)
        meta["namespace"] = namespace
        meta.setdefault("uid", f"uid-{next(self._serial)}")
        self.objects[(kind, namespace, meta["name"])] = obj
        return copy.deepcopy(obj)

    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        key = (kind, namespace, name)
        if key not in self.objects:
            raise ApiError(404, "NotFound", f"{kind} {name}")
        self.objects[key] = merge_patch(self.objects[key], body)
        return copy.deepcopy(self.objects[key])

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.objects.pop((kind, namespace, name), None)

    def pod_log(self, namespace: str, name: str, tail_lines: int) -> str:
        return self.logs.get((namespace, name), "")
