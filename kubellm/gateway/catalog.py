"""The gateway's view of the cluster: LLMs and their routes, Services, ready Pods.

Built from watch events (see `watching`), read by the proxy on every request. Endpoints are
derived here from Pods, the way the EndpointSlice controller derives them: a pod is an
endpoint of a Service when the Service's selector matches its labels, it is Ready, not
terminating, and has a pod IP; the port is the Service port's ``targetPort`` resolved
against the pod's named container ports.

Why not EndpointSlices: on our clusters every pod IP is a loopback address (127.x), and a
real control plane refuses the EndpointSlice controller's writes for loopback endpoints, so
slices stay empty there. Reading ready Pods by label works the same on localkube, on the
real control plane and on any production cluster, and lets the gateway choose the pod of
each attempt itself (least in flight, a retry on *another* pod), which a Service's cluster
IP would hide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubellm.api.timestamps import parse_time
from kubellm.gateway.routing import Endpoint, Route, parse_routes

__all__ = ["Catalog", "LLMView", "PodView", "ServiceView", "llm_key"]

Key = tuple[str, str]  # (namespace, name)


def llm_key(namespace: str, name: str) -> str:
    """How an LLM is named in metrics and in the demand report: ``namespace/name``."""
    return f"{namespace}/{name}"


@dataclass(frozen=True)
class LLMView:
    namespace: str
    name: str
    routes: tuple[Route, ...]
    created: int = 0

    @property
    def key(self) -> str:
        return llm_key(self.namespace, self.name)


@dataclass(frozen=True)
class ServiceView:
    namespace: str
    name: str
    selector: Mapping[str, str]
    #: targetPort of the service's first port: a number or a container port name
    target_port: int | str | None


@dataclass(frozen=True)
class PodView:
    namespace: str
    name: str
    labels: Mapping[str, str]
    ip: str | None
    ready: bool
    ports: Mapping[str, int] = field(default_factory=dict)

    def port_for(self, target: int | str | None) -> int | None:
        if isinstance(target, int):
            return target
        if isinstance(target, str):
            if target.isdigit():
                return int(target)
            return self.ports.get(target)
        return None


def _created(meta: Mapping[str, Any]) -> int:
    created = parse_time(meta.get("creationTimestamp"))
    return 0 if created is None else int(created.timestamp())


def _llm_view(obj: Mapping[str, Any]) -> LLMView:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    routes = parse_routes(name, obj.get("status"))
    return LLMView(str(meta.get("namespace") or "default"), name, tuple(routes), _created(meta))


def _service_view(obj: Mapping[str, Any]) -> ServiceView:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    ports = spec.get("ports") or []
    target: int | str | None = None
    if ports:
        first = ports[0]
        target = first.get("targetPort", first.get("port"))
    return ServiceView(
        str(meta.get("namespace") or "default"),
        str(meta.get("name") or ""),
        dict(spec.get("selector") or {}),
        target,
    )


def _pod_view(obj: Mapping[str, Any]) -> PodView:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    ready = ready and not meta.get("deletionTimestamp") and status.get("phase") == "Running"
    ports: dict[str, int] = {}
    for container in (obj.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") and isinstance(port.get("containerPort"), int):
                ports[port["name"]] = port["containerPort"]
    return PodView(
        str(meta.get("namespace") or "default"),
        str(meta.get("name") or ""),
        dict(meta.get("labels") or {}),
        status.get("podIP") or None,
        ready,
        ports,
    )


class Catalog:
    """LLMs, Services and Pods as last seen; endpoints per Service, cached until a change.

    Listeners (``on_change``) are called after every applied event; the proxy uses that to
    release held requests the moment a pod turns ready.
    """

    def __init__(self) -> None:
        self.llms: dict[Key, LLMView] = {}
        self.services: dict[Key, ServiceView] = {}
        self.pods: dict[Key, PodView] = {}
        self._endpoints: dict[Key, tuple[Endpoint, ...]] = {}
        self._listeners: list[Callable[[], None]] = []
        #: kinds whose initial list arrived (the gateway is ready once all three did)
        self.synced: set[str] = set()

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    # ------------------------------------------------------------------ updates
    def _table(self, kind: str) -> dict[Key, Any]:
        tables: dict[str, dict[Key, Any]] = {
            "LLM": self.llms,
            "Service": self.services,
            "Pod": self.pods,
        }
        return tables[kind]

    def apply(self, kind: str, event: str, obj: Mapping[str, Any]) -> None:
        """One watch event: ``kind`` LLM | Service | Pod; ``event`` ADDED | MODIFIED | DELETED."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
        table = self._table(kind)
        if event == "DELETED":
            table.pop(key, None)
        elif kind == "LLM":
            table[key] = _llm_view(obj)
        elif kind == "Service":
            table[key] = _service_view(obj)
        else:
            table[key] = _pod_view(obj)
        if kind != "LLM":
            self._endpoints.clear()
        self._changed()

    def replace(
        self, kind: str, objects: Sequence[Mapping[str, Any]], namespace: str | None = None
    ) -> None:
        """A full list of ``kind`` in ``namespace`` (None: all namespaces): the initial list,
        or a re-list after a watch expired."""
        table = self._table(kind)
        for key in [k for k in table if namespace is None or k[0] == namespace]:
            del table[key]
        build: Callable[[Mapping[str, Any]], Any] = {
            "LLM": _llm_view,
            "Service": _service_view,
            "Pod": _pod_view,
        }[kind]
        for obj in objects:
            meta = obj.get("metadata") or {}
            key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
            table[key] = build(obj)
        self._endpoints.clear()
        self._changed()

    def mark_synced(self, kind: str) -> None:
        self.synced.add(kind)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    # ------------------------------------------------------------------ queries
    def resolve(self, model: str) -> LLMView | list[LLMView] | None:
        """The LLM a request's ``model`` names: ``name`` or ``namespace/name``.

        A bare name that exists in several namespaces is ambiguous: the list of matches is
        returned so the caller can say which names to use.
        """
        if "/" in model:
            namespace, _, name = model.partition("/")
            return self.llms.get((namespace, name))
        matches = [view for (_, name), view in self.llms.items() if name == model]
        if len(matches) == 1:
            return matches[0]
        return sorted(matches, key=lambda v: v.key) or None

    def endpoints(self, namespace: str, service: str) -> tuple[Endpoint, ...]:
        key = (namespace, service)
        cached = self._endpoints.get(key)
        if cached is not None:
            return cached
        svc = self.services.get(key)
        found: list[Endpoint] = []
        if svc is not None and svc.selector:
            for pod in self.pods.values():
                if pod.namespace != namespace or not pod.ready or not pod.ip:
                    continue
                if any(pod.labels.get(k) != v for k, v in svc.selector.items()):
                    continue
                port = pod.port_for(svc.target_port)
                if port is not None:
                    found.append(Endpoint(pod.ip, port, pod.name))
        result = tuple(sorted(found))
        self._endpoints[key] = result
        return result

    def ready_counts(self, view: LLMView) -> dict[str, int]:
        return {rt.service: len(self.endpoints(view.namespace, rt.service)) for rt in view.routes}

    def all_llms(self) -> list[LLMView]:
        return sorted(self.llms.values(), key=lambda v: v.key)
