"""`LocalCluster`: the API server and every simulated controller in one asyncio loop.

This is the one wiring module of localkube: it starts the API server, writes a kubeconfig,
builds one informer per watched resource (shared by the controllers, as a
kube-controller-manager shares its informer factory) and starts the scheduler+kubelet,
ReplicaSet, Deployment, Job and HPA controllers and the service proxy. Stopping it stops
every process the kubelet started.

Each cluster takes its own address blocks (a :class:`~localkube.instances.Claim`,
so that clusters running at the same time never share a pod IP or a cluster IP), its own
random bearer token and CA (written into a 0600 kubeconfig; the API server speaks HTTPS and
answers 401 without the token), and a :class:`~localkube.lifetime.Guard` that tags
every pod process: if the process running the cluster dies without stopping it, even by
SIGKILL, the guard's watchdog stops them all.

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

from localkube.apiserver import ApiServer
from localkube.apiserver.auth import new_token, write_private
from localkube.apiserver.certs import generate as generate_certs
from localkube.client import (
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
from localkube.controllers.autoscaling import HpaController
from localkube.controllers.base import Clock, Controller, Informer, wait_synced
from localkube.controllers.deployments import DeploymentController
from localkube.controllers.faults import PodFault, PodFaults
from localkube.controllers.jobs import JobController
from localkube.controllers.kubelet import Kubelet
from localkube.controllers.replicasets import ReplicaSetController
from localkube.instances import Claim, claim_blocks
from localkube.lifetime import Guard
from localkube.networking import IpPool, ServiceProxy, loopback_aliases_work

__all__ = ["LocalCluster"]

log = logging.getLogger(__name__)

POD_FAULTS_PATH = "/_localkube/pod-faults"


async def pod_faults_endpoint(faults: PodFaults, request: web.Request) -> web.Response:
    """GET lists, POST adds (a PodFault as JSON), DELETE (?id=N) clears pod faults."""
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


def _pod_faults_middleware(faults: PodFaults) -> Any:
    """Serve /_localkube/pod-faults in front of the API server's own routes."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != POD_FAULTS_PATH:
            return await handler(request)
        return await pod_faults_endpoint(faults, request)

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
    """A whole local cluster; use `async with LocalCluster(workdir) as cluster:`.

    `claim` (address blocks) and `guard` (process lifetime) are taken over from the caller
    when given (`kubellm localkube up` makes them for the whole process); otherwise the
    cluster claims free blocks when constructed and makes its guard when started, and
    releases both in `stop()`.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
        kubeconfig_path: Path | None = None,
        time_scale: float = 1.0,
        claim: Claim | None = None,
        guard: Guard | None = None,
        allow_non_loopback: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.kubeconfig_path = kubeconfig_path or self.workdir / "kubeconfig"
        self.clock = Clock(time_scale)
        self.pod_faults = PodFaults()
        self.aliases = loopback_aliases_work()
        if not self.aliases:
            log.warning("this host allows only 127.0.0.1: pods share it, services use free ports")
        self.token = new_token()
        self.tls = generate_certs(self.workdir / "pki", [host])
        self._own_claim = claim is None
        self.claim = claim if claim is not None else claim_blocks(aliases=self.aliases)
        self.blocks = self.claim.blocks
        try:
            self.server = _ApiServer(
                host,
                port,
                state_file=state_file,
                log_dir=self.workdir / "logs",
                service_cidr=self.blocks.services,
                pod_faults=self.pod_faults,
                token=self.token,
                tls=self.tls,
                allow_non_loopback=allow_non_loopback,
            )
        except BaseException:
            self._release_claim()
            raise
        self.guard = guard
        self._own_guard = guard is None
        self.ip_pool = IpPool(self.blocks.pods, aliases=self.aliases)
        self.client: KubeClient | None = None
        self.informers: dict[str, Informer] = {}
        self.controllers: list[Controller] = []
        self.kubelet: Kubelet | None = None
        self.hpa: HpaController | None = None
        self.proxy: ServiceProxy | None = None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def keep_fds(self) -> tuple[int, ...]:
        """Descriptors every pod and the watchdog hold: the claim on the address blocks."""
        fd = self.claim.fileno()
        return () if fd is None else (fd,)

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.guard is None:
            self.guard = Guard("localkube", keep_fds=self.keep_fds)
        await self.server.start()
        write_private(self.kubeconfig_path, self.server.kubeconfig())
        client = self.client = KubeClient(
            self.url,
            user_agent="localkube-controllers/1.32",
            token=self.token,
            ssl_context=self.tls.client_context(),
        )
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
            guard=self.guard,
            keep_fds=self.keep_fds,
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
        log.info(
            "localkube cluster up at %s (workdir %s; pods %s, services %s)",
            self.url,
            self.workdir,
            self.blocks.pods,
            self.blocks.services,
        )

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
        if self.guard is not None and self._own_guard:
            leaked = await asyncio.to_thread(self.guard.close)
            if leaked:
                log.warning(
                    "stopped %d process(es) that outlived their pods: %s", len(leaked), leaked
                )
            self.guard = None
        self._release_claim()
        log.info("localkube cluster stopped")

    def _release_claim(self) -> None:
        if self._own_claim:
            self.claim.release()

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
