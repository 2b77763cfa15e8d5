"""Doubles for the operator's integration tests: a registry in memory, and a counting API.

`MemoryRegistry` stands in for the MLflow model registry behind `Registry`: the four calls
the operator makes (resolve an alias, read a version's tags, set tags, move an alias), kept
in dicts, every write recorded. Tests play the parts of the world outside the operator
through it too: `kubellm train` moving the candidate alias to the version it registered.

`CountingKube` wraps the operator's real `KubeApi` (REST to localkube) and records every
write it sends: create, patch and delete, with the kind and the name. Reads pass through.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from kubellm.operator.kube import KubeApi

__all__ = ["CountingKube", "MemoryRegistry", "Write"]


@dataclass(frozen=True)
class Write:
    """One write the operator sent: verb, kind, name (and the subresource of a patch)."""

    verb: str
    kind: str
    name: str
    subresource: str | None = None


@dataclass
class MemoryRegistry:
    """The registry calls of the operator, over dicts; ``writes`` lists what it changed."""

    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    tags: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    writes: list[tuple[str, ...]] = field(default_factory=list)

    def resolve_alias(self, name: str, alias: str) -> str | None:
        return self.aliases.get((name, alias))

    def get_version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.tags.get((name, version), {}))

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        self.writes.append(("set_version_tags", name, version))
        self.tags.setdefault((name, version), {}).update(tags)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.writes.append(("set_alias", name, alias, version))
        self.aliases[(name, alias)] = version

    def delete_alias(self, name: str, alias: str) -> None:
        self.writes.append(("delete_alias", name, alias))
        self.aliases.pop((name, alias), None)


class CountingKube:
    """A `KubeApi` that records every write it forwards to the wrapped one."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self.writes: list[Write] = []
        self._lock = threading.Lock()

    def _record(self, write: Write) -> None:
        with self._lock:
            self.writes.append(write)

    def take(self) -> list[Write]:
        """The writes recorded since the last call (and forget them)."""
        with self._lock:
            out, self.writes = self.writes, []
        return out

    def list(
        self, kind: str, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        return self.api.list(kind, namespace, label_selector)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get(kind, namespace, name)

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        meta = body.get("metadata") or {}
        self._record(Write("create", kind, meta.get("name") or meta.get("generateName", "")))
        return self.api.create(kind, namespace, body)

    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        self._record(Write("patch", kind, name, subresource))
        return self.api.patch(kind, namespace, name, body, subresource)

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self._record(Write("delete", kind, name))
        self.api.delete(kind, namespace, name)

    def pod_log(self, namespace: str, name: str, tail_lines: int) -> str:
        return self.api.pod_log(namespace, name, tail_lines)
