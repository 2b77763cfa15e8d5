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

One exception to "Ready": while requests wait for an LLM with no ready pod, the gateway runs
a starting pod's own readiness check itself (`holding`) and, once it passes, counts the pod
as an endpoint (`vouch`) without waiting up to a probe period for the kubelet's next check
and its status write. The check is the pod's (its readinessProbe's HTTP GET), so a pod is
still routed to only once its server says it is ready.
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
    #: running, not terminating, with an IP, not Ready yet: a pod that is starting
    starting: bool = False
    #: its server's readiness check, (path, port), when it is an HTTP GET that one success
    #: passes: the gateway may run it itself for a starting pod while requests wait
    readiness: tuple[str, int | str] | None = None

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

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
    running = not meta.get("deletionTimestamp") and status.get("phase") == "Running"
    ready = ready and running
    ports: dict[str, int] = {}
    readiness: tuple[str, int | str] | None = None
    for container in (obj.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") and isinstance(port.get("containerPort"), int):
                ports[port["name"]] = port["containerPort"]
        readiness = readiness or _http_readiness(container.get("readinessProbe"))
    ip = status.get("podIP") or None
    return PodView(
        str(meta.get("namespace") or "default"),
        str(meta.get("name") or ""),
        dict(meta.get("labels") or {}),
        ip,
        ready,
        ports,
        starting=bool(running and ip and not ready),
        readiness=readiness,
    )


def _http_readiness(probe: Any) -> tuple[str, int | str] | None:
    """(path, port) of a readiness probe the gateway can run as the kubelet does: an HTTP
    GET without headers or a host of its own, passed by one success."""
    if not isinstance(probe, Mapping) or int(probe.get("successThreshold") or 1) > 1:
        return None
    get = probe.get("httpGet")
    if not isinstance(get, Mapping) or get.get("host") or get.get("httpHeaders"):
        return None
    if str(get.get("scheme") or "HTTP").upper() != "HTTP":
        return None
    port = get.get("port")
    if not isinstance(port, int | str) or isinstance(port, bool):
        return None
    path = str(get.get("path") or "/")
    return (path if path.startswith("/") else "/" + path, port)


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
        #: starting pods (and their IP) that passed their own readiness check when the
        #: gateway ran it (see `vouch`), until the kubelet's verdict arrives
        self.vouched: set[tuple[Key, str]] = set()
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
        if kind == "Pod":
            self._forget_vouches()
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
        self._forget_vouches()
        self._changed()

    def vouch(self, pod: PodView) -> bool:
        """``pod``, still starting with the same IP, passed its readiness check when the
        gateway ran it: an endpoint from now on, without waiting for the kubelet's next probe
        (up to a period later) and its status write. A later event of the pod (Ready, or not
        running any more, or another IP) ends the vouch. True when it was taken."""
        current = self.pods.get(pod.key)
        if current is None or not current.starting or not current.ip or current.ip != pod.ip:
            return False
        self.vouched.add((pod.key, current.ip))
        self._endpoints.clear()
        self._changed()
        return True

    def _forget_vouches(self) -> None:
        for key, ip in list(self.vouched):
            pod = self.pods.get(key)
            if pod is None or not pod.starting or pod.ip != ip:
                self.vouched.discard((key, ip))

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
                if pod.namespace != namespace or not pod.ip:
                    continue
                if not pod.ready and (pod.key, pod.ip) not in self.vouched:
                    continue
                if any(pod.labels.get(k) != v for k, v in svc.selector.items()):
                    continue
                port = pod.port_for(svc.target_port)
                if port is not None:
                    found.append(Endpoint(pod.ip, port, pod.name))
        result = tuple(sorted(found))
        self._endpoints[key] = result
        return result

    def starting_pods(self, view: LLMView) -> list[PodView]:
        """Pods of ``view``'s routed Services that are starting, not vouched for, and whose
        readiness check the gateway can run."""
        selectors = []
        for rt in view.routes:
            svc = self.services.get((view.namespace, rt.service))
            if rt.weight > 0 and svc is not None and svc.selector:
                selectors.append(svc.selector)
        return [
            pod
            for pod in self.pods.values()
            if pod.namespace == view.namespace
            and pod.starting
            and pod.readiness is not None
            and (pod.key, pod.ip) not in self.vouched
            and any(all(pod.labels.get(k) == v for k, v in sel.items()) for sel in selectors)
        ]

    def ready_counts(self, view: LLMView) -> dict[str, int]:
        return {rt.service: len(self.endpoints(view.namespace, rt.service)) for rt in view.routes}

    def all_llms(self) -> list[LLMView]:
        return sorted(self.llms.values(), key=lambda v: v.key)
