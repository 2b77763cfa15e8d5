"""`RealCluster`: a real control plane with localkube's node, behind LocalCluster's interface.

`kubellm localkube up --control-plane real` runs this instead of the emulator: the same
kubeconfig in the workdir, the same pod-faults admin endpoint (served next to the node on
plain loopback HTTP, since the real apiserver cannot mount it), the same `stop()` that ends
every process. Tests pick it with `KUBELLM_E2E_CLUSTER=real`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from localkube.cluster import POD_FAULTS_PATH, pod_faults_endpoint
from localkube.controllers.faults import PodFaults
from localkube.lifetime import Guard
from localkube.realkube.controlplane import ControlPlane
from localkube.realkube.node import RealNode

__all__ = ["RealCluster"]

log = logging.getLogger(__name__)


class RealCluster:
    """etcd + kube-apiserver + controller manager + scheduler + localkube's node."""

    def __init__(
        self,
        workdir: Path,
        *,
        kubeconfig_path: Path | None = None,
        time_scale: float = 1.0,
        service_cidr: str = "127.96.0.0/16",
        pod_cidr: str = "127.64.0.0/10",
        gpus: int = 0,
        guard: Guard | None = None,
        keep_fds: tuple[int, ...] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.kubeconfig_path = kubeconfig_path or self.workdir / "kubeconfig"
        #: every process of this cluster carries the guard's tag (see localkube/lifetime.py)
        self.guard = guard
        self.keep_fds = keep_fds
        self.control_plane = ControlPlane(
            self.workdir / "control-plane",
            service_cidr=service_cidr,
            env=guard.env() if guard is not None else None,
        )
        self.pod_faults = PodFaults()
        self.time_scale = time_scale
        self.pod_cidr = pod_cidr
        self.gpus = gpus
        self.node: RealNode | None = None
        self.version = ""
        self._admin: web.AppRunner | None = None
        self.admin_url = ""

    @property
    def url(self) -> str:
        return self.control_plane.url

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # In this (the loop's) thread: each component's PR_SET_PDEATHSIG is tied to the
        # thread that started it, and a worker thread may exit before the cluster does.
        self.control_plane.start()
        self.version = await asyncio.to_thread(self.control_plane.version)
        self.kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
        if self.kubeconfig_path != self.control_plane.admin_kubeconfig:
            self.kubeconfig_path.write_bytes(self.control_plane.admin_kubeconfig.read_bytes())
            self.kubeconfig_path.chmod(0o600)
        assert self.control_plane.pki is not None
        self.node = RealNode(
            self.url,
            self.control_plane.pki,
            self.workdir,
            version=self.version,
            pod_cidr=self.pod_cidr,
            gpus=self.gpus,
            time_scale=self.time_scale,
            faults=self.pod_faults,
            guard=self.guard,
            keep_fds=self.keep_fds,
        )
        await self.node.start()
        await self._serve_admin()
        log.info("real cluster %s up at %s (workdir %s)", self.version, self.url, self.workdir)

    async def stop(self) -> None:
        if self._admin is not None:
            await self._admin.cleanup()
        if self.node is not None:
            await self.node.stop()
        await asyncio.to_thread(self.control_plane.stop)
        log.info("real cluster stopped")

    async def __aenter__(self) -> RealCluster:
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
        assert self.node is not None and self.node.hpa is not None, "cluster not started"
        self.node.hpa.set_metric(namespace, hpa, metric, value)

    # -- /_localkube admin endpoints ---------------------------------------------------------
    async def _serve_admin(self) -> None:
        app = web.Application()
        app.router.add_get("/_localkube/healthz", self._healthz)
        app.router.add_route(
            "*", POD_FAULTS_PATH, functools.partial(pod_faults_endpoint, self.pod_faults)
        )
        self._admin = web.AppRunner(app, access_log=None)
        await self._admin.setup()
        site = web.TCPSite(self._admin, "127.0.0.1", 0)
        await site.start()
        server: Any = getattr(site, "_server", None)
        port = int(server.sockets[0].getsockname()[1])
        self.admin_url = f"http://127.0.0.1:{port}"

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"cluster": "real", "version": self.version, "api": self.url})
