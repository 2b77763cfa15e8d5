"""localkube's API server: the Kubernetes API on loopback, for kopf, kubectl and the client.

No kube-apiserver can run on the machines kubellm is developed and tested on, yet the real
kopf, the real `kubernetes` client and the real `kubectl` must be exercised over HTTP. This
package serves the subset of the API those clients need (see
`docs/kube-emulator.md`), faithfully: discovery, OpenAPI v3, generic storage with one
global resourceVersion, watches with bookmarks and in-stream 410s, the four patch types,
status/scale subresources, finalizers and garbage collection, CRDs with schema and CEL
validation, Tables for `kubectl get`, and request-level fault injection.

Division of labour with the simulated controllers (`localkube.controllers`):

* The server runs no pods. The kubelet watches pods and writes their status through
  `/status`, and writes container logs to `<log_dir>/<ns>/<pod>/<container>.log`
  (`<container>.previous.log` for the previous instance), served by
  `GET .../pods/<name>/log?container=&follow=&tailLines=&previous=`.
* Pod deletion is graceful: a DELETE with a grace period > 0 (the options'
  `gracePeriodSeconds`, else `spec.terminationGracePeriodSeconds`, default 30) only sets
  `deletionTimestamp` and `deletionGracePeriodSeconds` (a MODIFIED event). The kubelet then
  stops the process (SIGTERM, SIGKILL after the grace period) and deletes the pod with
  `gracePeriodSeconds=0`, which removes it at once. Pods never scheduled (no
  `spec.nodeName`) or already Succeeded/Failed are removed at once, as upstream.
* Services get `spec.clusterIP`/`clusterIPs` from `service_cidr` (loopback, e.g.
  127.96.0.2), unless `clusterIP: None`; the service proxy binds those addresses.
* Deployments, ReplicaSets, Jobs and HPAs are only stored, defaulted and validated here;
  the controllers write their status (and Deployments/ReplicaSets have `/scale`).
* Garbage collection by ownerReferences (background, foreground, orphan; Jobs default to
  orphan) and namespace/CRD teardown run inside the server.

Authentication (:mod:`.auth`): with a `token`, every request but the health endpoints and
`/version` must carry `Authorization: Bearer <token>` (401 otherwise), and the kubeconfig
carries the token. With `tls` (:mod:`.certs`) the server speaks HTTPS and the kubeconfig
carries its CA: kubectl sends a kubeconfig's token only to an `https://` server.
`LocalCluster` always sets both. Without them (in-process tests that drive the server
directly) the server trusts whoever reaches it over plain HTTP. Either way it listens only
on a loopback address unless `allow_non_loopback` is set.

Fault injection: :attr:`ApiServer.faults` (a :class:`FaultInjector`), also reachable as
`POST /_localkube/faults` with the JSON bodies documented in :mod:`.faults`.
`GET /_localkube/healthz` answers "ok". Each request is logged at INFO on the logger
`localkube.apiserver` as `METHOD PATH STATUS MS`.
"""

from __future__ import annotations

import base64
import logging
import socket
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from .auth import bearer_auth, check_host
from .certs import ServingCert
from .collecting import Collector
from .crds import kind_from_crd
from .engine import Engine
from .faults import Fault, FaultInjector
from .handlers import Handlers, log_requests
from .kinds import Registry
from .storage import CLOSE, Event, Store

__all__ = ["ApiServer", "Fault", "FaultInjector"]

log = logging.getLogger("localkube.apiserver")

CRD_KEY = "apiextensions.k8s.io/customresourcedefinitions"


class ApiServer:
    """The API server; `await start()` binds it, then `.url` and `.port` are set."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        state_file: Path | None = None,
        log_dir: Path | None = None,
        service_cidr: str = "127.96.0.0/16",
        token: str | None = None,
        tls: ServingCert | None = None,
        allow_non_loopback: bool = False,
    ) -> None:
        check_host(host, allow_non_loopback=allow_non_loopback)
        self.host = host
        self.token = token
        self.tls = tls
        self.port = port
        self.url = ""
        self.log_dir = log_dir
        self.registry = Registry()
        self.store = Store(state_file=state_file)
        self.engine = Engine(self.store, self.registry, service_cidr)
        self.collector = Collector(self.engine)
        self.faults = FaultInjector(self._signal_watches)
        self.handlers = Handlers(
            self.engine, self.collector, self.faults, log_dir, lambda: f"{self.host}:{self.port}"
        )
        self.store.listeners.append(self._on_event)
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------
    def build_app(self) -> web.Application:
        middlewares: list[Any] = [log_requests]
        if self.token:
            middlewares.append(bearer_auth(self.token))
        app = web.Application(middlewares=middlewares, client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handlers.dispatch)
        return app

    async def start(self) -> None:
        self.store.load()
        self.engine.seed()
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        ssl_context = self.tls.server_context() if self.tls is not None else None
        site = web.SockSite(self._runner, sock, ssl_context=ssl_context)
        await site.start()
        scheme = "https" if self.tls is not None else "http"
        self.url = f"{scheme}://{self.host}:{self.port}"
        log.info("localkube API server listening on %s", self.url)

    async def stop(self) -> None:
        self.store.signal(None, CLOSE)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.store.state_file is not None:
            self.store.save()

    def kubeconfig(self, namespace: str = "default") -> str:
        """A kubeconfig (YAML text) pointing at this server, with its token and CA if any."""
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls is not None:
            ca = base64.b64encode(self.tls.ca_pem.encode()).decode()
            cluster["certificate-authority-data"] = ca
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "localkube", "cluster": cluster}],
            "users": [{"name": "localkube", "user": {"token": self.token} if self.token else {}}],
            "contexts": [
                {
                    "name": "localkube",
                    "context": {
                        "cluster": "localkube",
                        "user": "localkube",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": "localkube",
            "preferences": {},
        }
        return yaml.safe_dump(config, sort_keys=False)

    # -- wiring ----------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        """Keep the served resources in step with the stored CRDs."""
        if event.key != CRD_KEY:
            return
        if event.type == "DELETED":
            spec = event.obj["spec"]
            key = f"{spec['group']}/{spec['names']['plural']}"
            self.registry.remove(key)
            self.store.signal(key, CLOSE)
            self.store.objects.pop(key, None)
        else:
            try:
                self.registry.add(kind_from_crd(event.obj))
            except (KeyError, IndexError, TypeError) as e:  # validated on write; be safe
                log.warning("cannot serve CRD %s: %s", event.obj["metadata"]["name"], e)

    def _signal_watches(self, resource: str | None, message: str) -> int:
        if resource is None:
            return self.store.signal(None, message)
        total = 0
        for kind in self.registry.all():
            if resource in (kind.plural, kind.resource_name, kind.key):
                total += self.store.signal(kind.key, message)
        return total
