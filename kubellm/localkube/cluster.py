"""`LocalCluster`: the API server and every simulated controller in one asyncio loop.

This is the one wiring module of localkube: it starts the API server, writes a kubeconfig,
builds one informer per watched resource (shared by the controllers, as a
kube-controller-manager shares its informer factory) and starts the scheduler+kubelet,
ReplicaSet, Deployment, Job and HPA controllers and the service proxy. Stopping it stops
every process the kubelet started.

Pod-process faults are reachable from Python (`cluster.pod_faults`) and over HTTP:
`POST /_localkube/pod-faults` with a :class:`PodFault` as JSON (`{"kind": "crash",
"namePrefix": "web-", "after": 1}`) adds one and answers it with its `id`;
`GET` lists them; `DELETE` (optionally `?id=N`) clears them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from kubellm.localkube.apiserver import ApiServer
from kubellm.localkube.client import (
    CONFIGMAPS,
    DEPLOYMENTS,
    HPAS,
    JOBS,
    PODS,
    REPLICASETS,
    SECRETS,
    SERVICES,
    KubeClient,
)
from kubellm.localkube.controllers.autoscaling import HpaController
from kubellm.localkube.controllers.base import Clock, Controller, Informer, wait_synced
from kubellm.localkube.controllers.deployments import DeploymentController
from kubellm.localkube.controllers.faults import PodFault, PodFaults
from kubellm.localkube.controllers.jobs import JobController
from kubellm.localkube.controllers.kubelet import Kubelet
from kubellm.localkube.controllers.replicasets import ReplicaSetController
from kubellm.localkube.networking import IpPool, ServiceProxy, loopback_aliases_work

__all__ = ["LocalCluster"]

log = logging.getLogger(__name__)

POD_FAULTS_PATH = "/_localkube/pod-faults"


def _pod_faults_middleware(faults: PodFaults) -> Any:
    """Serve /_localkube/pod-faults in front of the API server's own routes."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != POD_FAULTS_PATH:
            return await handler(request)
        if request.method == "GET":
            return web.json_response({"faults": [f.to_dict() for f in faults.list()]})
        if request.method == "DELETE":
            raw = request.query.get("id")
            faults.clear(int(raw) if raw else None)
            return web.json_response({"cleared": raw or "all"})
        if request.method == "POST":
            try:
                body = json.loads(await request.text() or "{}")
                fault = faults.add(PodFault.from_dict(body))
            except (ValueError, TypeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            log.info("pod fault added: %s", fault)
            return web.json_response(fault.to_dict(), status=201)
        return web.json_response({"error": "method not allowed"}, status=405)

    return middleware


class _ApiServer(ApiServer):
    """The API server with the pod-faults admin endpoint mounted."""

    def __init__(self, *args: Any, pod_faults: PodFaults, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pod_faults = pod_faults

    def build_app(self) -> web.Application:
        app = super().build_app()
        app.middlewares.append(_pod_faults_middleware(self._pod_faults))
        return app


class LocalCluster:
    """A whole local cluster; use `async with LocalCluster(workdir) as cluster:`."""

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
        kubeconfig_path: Path | None = None,
        time_scale: float = 1.0,
        service_cidr: str = "127.96.0.0/16",
        pod_cidr: str = "127.64.0.0/10",
    ) -> None:
        self.workdir = Path(workdir)
        self.kubeconfig_path = kubeconfig_path or self.workdir / "kubeconfig"
        self.clock = Clock(time_scale)
        self.pod_faults = PodFaults()
        self.aliases = loopback_aliases_work()
        if not self.aliases:
            log.warning("this host allows only 127.0.0.1: pods share it, services use free ports")
        self.server = _ApiServer(
            host,
            port,
            state_file=state_file,
            log_dir=self.workdir / "logs",
            service_cidr=service_cidr,
            pod_faults=self.pod_faults,
        )
        self.ip_pool = IpPool(pod_cidr, aliases=self.aliases)
        self.client: KubeClient | None = None
        self.informers: dict[str, Informer] = {}
        self.controllers: list[Controller] = []
        self.kubelet: Kubelet | None = None
        self.hpa: HpaController | None = None
        self.proxy: ServiceProxy | None = None

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self.server.start()
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        self.kubeconfig_path.write_text(self.server.kubeconfig())
        client = self.client = KubeClient(self.url, user_agent="localkube-controllers/1.32")
        inf = self.informers = {
            r.plural: Informer(client, r)
            for r in (PODS, SERVICES, CONFIGMAPS, SECRETS, REPLICASETS, DEPLOYMENTS, JOBS, HPAS)
        }
        self.kubelet = Kubelet(
            client,
            inf["pods"],
            inf["configmaps"],
            inf["secrets"],
            inf["services"],
            workdir=self.workdir,
            log_dir=self.workdir / "logs",
            clock=self.clock,
            ip_pool=self.ip_pool,
            faults=self.pod_faults,
            kubeconfig=self.kubeconfig_path,
            api_url=self.url,
        )
        self.hpa = HpaController(
            client, inf["horizontalpodautoscalers"], inf["pods"], self.clock, pids=self.kubelet.pids
        )
        self.controllers = [
            self.kubelet,
            ReplicaSetController(client, inf["replicasets"], inf["pods"], self.clock),
            DeploymentController(client, inf["deployments"], inf["replicasets"], self.clock),
            JobController(client, inf["jobs"], inf["pods"], self.clock),
            self.hpa,
        ]
        self.proxy = ServiceProxy(inf["services"], inf["pods"], aliases=self.aliases)
        for i in inf.values():
            i.start()
        await wait_synced(inf.values())
        for c in self.controllers:
            c.start()
        self.proxy.start()
        log.info("localkube cluster up at %s (workdir %s)", self.url, self.workdir)

    async def stop(self) -> None:
        for c in reversed(self.controllers):
            with contextlib.suppress(Exception):
                await c.stop()
        if self.proxy is not None:
            await self.proxy.stop()
        for i in self.informers.values():
            await i.stop()
        if self.client is not None:
            await self.client.close()
        await self.server.stop()
        log.info("localkube cluster stopped")

    async def __aenter__(self) -> LocalCluster:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def set_metric(self, namespace: str, hpa: str, metric: str, value: float | None) -> None:
        """Feed an HPA metric directly (overrides scraping); see HpaController.set_metric."""
        assert self.hpa is not None, "cluster not started"
        self.hpa.set_metric(namespace, hpa, metric, value)

    async def wait_stopped(self, stop: asyncio.Event) -> None:
        await stop.wait()
        await self.stop()
