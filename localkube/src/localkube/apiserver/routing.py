"""URL parsing: which resource, namespace, name and subresource a path addresses.

Forms (spec §3): `/api/v1/...` and `/apis/<g>/<v>/...`, then
`[namespaces/<ns>/]<plural>[/<name>[/<sub>]]`. `/api/v1/namespaces/<x>/<y>` is a
namespaced collection only if `<y>` is a namespaced plural; otherwise it addresses the
Namespace `<x>` (and `<y>` is its subresource). The legacy `/watch/` prefix is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ApiError
from .kinds import Registry, ResourceKind

__all__ = ["Target", "parse_path"]


@dataclass(frozen=True)
class Target:
    kind: ResourceKind
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None
    legacy_watch: bool = False


NOT_FOUND = "the server could not find the requested resource"


def parse_path(registry: Registry, path: str) -> tuple[str, str, list[str]]:
    """(group, version, rest segments) for an API path; raises 404 for anything else."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return "", parts[1], parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return parts[1], parts[2], parts[3:]
    raise ApiError(404, NOT_FOUND)


def resolve(registry: Registry, group: str, version: str, rest: list[str]) -> Target:
    legacy_watch = False
    if rest and rest[0] == "watch":
        legacy_watch = True
        rest = rest[1:]
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = registry.lookup(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace = rest[1]
            rest = rest[2:]
    if not rest or len(rest) > 3:
        raise ApiError(404, NOT_FOUND)
    kind = registry.lookup(group, version, rest[0])
    if kind is None:
        raise ApiError(404, NOT_FOUND)
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    if name is not None and kind.namespaced and namespace is None:
        raise ApiError(404, NOT_FOUND)
    if sub is not None and not _has_sub(kind, sub):
        raise ApiError(404, NOT_FOUND)
    return Target(kind, version, namespace, name, sub, legacy_watch)


def _has_sub(kind: ResourceKind, sub: str) -> bool:
    if sub == "status":
        return kind.status
    if sub == "scale":
        return kind.scale is not None
    if sub == "log":
        return kind.key == "/pods"
    return sub == "finalize" and kind.key == "/namespaces"
