"""The Kubernetes REST API as our clients see it: where each kind lives, and its error.

Three clients of ours talk to an API server: the operator (`operator.kube`, over the
official client), the gateway's watches (`gateway.watching`) and localkube's controllers
(`localkube.client`, both on aiohttp). They share this table, so a kind's URL is spelled
once, and one `ApiError`, so a refused call is caught the same way everywhere: by
``status`` (or `ApiError.not_found`, `ApiError.conflict`), never by parsing a message.
`WatchExpired` is the one answer a watcher handles apart: list again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubellm.api.identity import GROUP, KIND, PLURAL, VERSION

__all__ = [
    "CONFIGMAPS",
    "DEPLOYMENTS",
    "EVENTS",
    "HPAS",
    "JOBS",
    "LLMS",
    "PODS",
    "PVCS",
    "REPLICASETS",
    "RESOURCES",
    "SECRETS",
    "SERVICES",
    "ApiError",
    "Resource",
    "WatchExpired",
]


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the URL space: ``/api/v1/...`` or ``/apis/<g>/<v>/...``."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        """The collection (no `name`), an object, or its subresource `sub` (``status``,
        ``log``); without a `namespace` the collection spans all namespaces."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if sub:
                base += f"/{sub}"
        return base


PODS = Resource("", "v1", "pods", "Pod")
SERVICES = Resource("", "v1", "services", "Service")
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
EVENTS = Resource("", "v1", "events", "Event")
PVCS = Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
REPLICASETS = Resource("apps", "v1", "replicasets", "ReplicaSet")
JOBS = Resource("batch", "v1", "jobs", "Job")
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
LLMS = Resource(GROUP, VERSION, PLURAL, KIND)

#: every kind above, by its ``kind``
RESOURCES: Mapping[str, Resource] = {
    r.kind: r
    for r in (
        PODS,
        SERVICES,
        CONFIGMAPS,
        SECRETS,
        EVENTS,
        PVCS,
        DEPLOYMENTS,
        REPLICASETS,
        JOBS,
        HPAS,
        LLMS,
    )
}


class ApiError(Exception):
    """A non-2xx answer of an API server.

    ``status`` is the HTTP code, ``reason`` the Status' reason (``NotFound``, ``Conflict``,
    ``Forbidden``...) or else the HTTP reason phrase, ``message`` the Status' message or
    the start of the body. `from_response` reads them from what the server sent.
    """

    def __init__(
        self,
        status: int,
        reason: str = "",
        message: str = "",
        *,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        where = f"{method} {path}".strip()
        text = f"{status} {reason}".strip() + (f": {message}" if message else "")
        super().__init__(f"{where}: {text}" if where else text)

    @classmethod
    def from_response(
        cls, status: int, body: Any, reason: str = "", *, method: str = "", path: str = ""
    ) -> ApiError:
        """From a decoded body: a Status object (its reason and message), else text."""
        if isinstance(body, dict):
            reason = str(body.get("reason") or reason)
            message = str(body.get("message") or "")
        else:
            message = str(body or "")[:500]
        return cls(status, reason, message, method=method, path=path)

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


class WatchExpired(Exception):
    """A watch's resourceVersion is too old (410 Gone, as an answer or an ERROR event): the
    watcher lists again, which is not a failure."""
