"""localkube's kubelet and service proxy as the one Node of a real control plane.

Against a real kube-apiserver the node has to do what a kubelet does beyond running pods:
register its Node with capacity (cpu, memory, pods, and optionally a fake
`nvidia.com/gpu` so GPU scheduling can be tested), keep it Ready with a Lease heartbeat so
the node lifecycle controller does not taint it, serve the kubelet API that the apiserver
calls for `kubectl logs`, and hand each pod the credentials of its service account (the
ServiceAccount admission plugin adds a projected `kube-api-access-*` volume; here the
token comes from the TokenRequest API and is also written into a kubeconfig of the pod's
own, because a local process cannot see `/var/run/secrets/...`). The pods themselves, the
Service proxy and the HPA are localkube's controllers, unchanged; the scheduler,
Deployment, ReplicaSet, Job, garbage-collection and EndpointSlice controllers are the real
ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from kubellm.api.rest import PVCS
from kubellm.api.timestamps import now_rfc3339
from localkube.client import (
    CONFIGMAPS,
    HPAS,
    PODS,
    SECRETS,
    SERVICES,
    ApiError,
    KubeClient,
    Resource,
)
from localkube.controllers.autoscaling import HpaController
from localkube.controllers.base import Clock, Controller, Informer, wait_synced
from localkube.controllers.env import EnvError
from localkube.controllers.faults import PodFaults
from localkube.controllers.kubelet import NODE_NAME, Kubelet
from localkube.controllers.meta import now_str
from localkube.lifetime import Guard
from localkube.networking import IpPool, ServiceProxy, loopback_aliases_work
from localkube.realkube.kubeconfig import write_token_kubeconfig
from localkube.realkube.pki import Pki

__all__ = ["NODES", "RealNode"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
PVS = Resource("", "v1", "persistentvolumes", "PersistentVolume", namespaced=False)
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
HEARTBEAT = 10.0
STATUS_EVERY = 30.0


def _client_context(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.node_agent.cert), str(pki.node_agent.key))
    return ctx


def _server_context(pki: Pki) -> ssl.SSLContext:
    """The kubelet API: serve with the node's cert, accept only CA-signed clients."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
    ctx.load_cert_chain(str(pki.kubelet_serving.cert), str(pki.kubelet_serving.key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def node_manifest(
    name: str,
    *,
    cpu: str,
    memory: str,
    pods: int,
    gpus: int,
    kubelet_port: int,
    version: str,
    address: str = "127.0.0.1",
) -> tuple[JSON, JSON]:
    """The Node object and its status (pure: the heartbeat re-sends the status)."""
    capacity = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi"}
    if gpus:
        capacity["nvidia.com/gpu"] = str(gpus)
    now = now_str()
    conditions = [
        {
            "type": t,
            "status": "False",
            "reason": f"KubeletHasSufficient{t.removesuffix('Pressure')}"
            if t != "PIDPressure"
            else "KubeletHasSufficientPID",
            "message": "localkube node",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        for t in ("MemoryPressure", "DiskPressure", "PIDPressure")
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "localkube's kubelet is posting ready status",
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
    )
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubellm.dev/localkube": "true",
            },
        },
        "spec": {},
    }
    status = {
        "capacity": capacity,
        "allocatable": dict(capacity),
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": address},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": {
            "machineID": "localkube",
            "systemUUID": "localkube",
            "bootID": "localkube",
            "kernelVersion": platform.release(),
            "osImage": "localkube processes",
            "containerRuntimeVersion": "localkube://1",
            "kubeletVersion": version,
            "kubeProxyVersion": version,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }
    return node, status


def persistent_volume(claim: JSON, workdir: Path, node_name: str) -> JSON:
    """A PersistentVolume pre-bound to ``claim``, on this node (pure)."""
    meta, spec = claim["metadata"], claim.get("spec") or {}
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage") or "1Gi"
    on_this_node = {"key": "kubernetes.io/hostname", "operator": "In", "values": [node_name]}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{meta['uid']}", "labels": {"kubellm.dev/localkube": "true"}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": spec.get("storageClassName") or "",
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "hostPath": {
                "path": str(workdir / "claims" / meta["namespace"] / meta["name"]),
                "type": "DirectoryOrCreate",
            },
            "nodeAffinity": {
                "required": {"nodeSelectorTerms": [{"matchExpressions": [on_this_node]}]}
            },
        },
    }


class RealNode:
    """The node agent: Node + Lease heartbeat, kubelet API, kubelet, proxy and HPA."""

    def __init__(
        self,
        api_url: str,
        pki: Pki,
        workdir: Path,
        *,
        version: str,
        node_name: str = NODE_NAME,
        pod_cidr: str = "127.64.0.0/10",
        cpu: str | None = None,
        memory: str = "64Gi",
        max_pods: int = 250,
        gpus: int = 0,
        time_scale: float = 1.0,
        faults: PodFaults | None = None,
        guard: Guard | None = None,
        keep_fds: tuple[int, ...] = (),
    ) -> None:
        self.guard = guard
        self.keep_fds = keep_fds
        self.api_url = api_url
        self.pki = pki
        self.workdir = workdir
        self.version = version
        self.node_name = node_name
        self.cpu = cpu or str(max(8, os.cpu_count() or 1))
        self.memory = memory
        self.max_pods = max_pods
        self.gpus = gpus
        self.clock = Clock(time_scale)
        self.pod_faults = faults or PodFaults()
        self.aliases = loopback_aliases_work()
        self.ip_pool = IpPool(pod_cidr, aliases=self.aliases)
        self.client = KubeClient(
            api_url, user_agent=f"localkube-node/{version}", ssl_context=_client_context(pki)
        )
        self.informers: dict[str, Informer] = {}
        self.controllers: list[Controller] = []
        self.kubelet: Kubelet | None = None
        self.hpa: HpaController | None = None
        self.proxy: ServiceProxy | None = None
        self._runner: web.AppRunner | None = None
        self.kubelet_port = 0
        self._heartbeat: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await self._serve_kubelet_api()
        await self._register()
        self._heartbeat = asyncio.create_task(self._heartbeat_loop(), name="node-heartbeat")
        inf = self.informers = {
            r.plural: Informer(self.client, r)
            for r in (PODS, SERVICES, CONFIGMAPS, SECRETS, HPAS, PVCS)
        }
        inf["persistentvolumeclaims"].add_handler(self._claim_changed)
        self.kubelet = Kubelet(
            self.client,
            inf["pods"],
            inf["configmaps"],
            inf["secrets"],
            inf["services"],
            workdir=self.workdir,
            log_dir=self.workdir / "logs" / "pods",
            clock=self.clock,
            ip_pool=self.ip_pool,
            faults=self.pod_faults,
            kubeconfig=None,
            api_url=self.api_url,
            node_name=self.node_name,
            schedule=False,
            pod_setup=self._pod_setup,
            guard=self.guard,
            keep_fds=self.keep_fds,
        )
        self.hpa = HpaController(
            self.client,
            inf["horizontalpodautoscalers"],
            inf["pods"],
            self.clock,
            pids=self.kubelet.pids,
        )
        self.controllers = [self.kubelet, self.hpa]
        self.proxy = ServiceProxy(inf["services"], inf["pods"], aliases=self.aliases)
        for i in inf.values():
            i.start()
        await wait_synced(inf.values())
        for c in self.controllers:
            c.start()
        self.proxy.start()
        log.info("node %s ready (kubelet API on 127.0.0.1:%d)", self.node_name, self.kubelet_port)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._heartbeat
        for c in reversed(self.controllers):
            with contextlib.suppress(Exception):
                await c.stop()
        if self.proxy is not None:
            await self.proxy.stop()
        for i in self.informers.values():
            await i.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.client.close()

    # -- Node and heartbeat ----------------------------------------------------------------
    def _manifest(self) -> tuple[JSON, JSON]:
        return node_manifest(
            self.node_name,
            cpu=self.cpu,
            memory=self.memory,
            pods=self.max_pods,
            gpus=self.gpus,
            kubelet_port=self.kubelet_port,
            version=self.version,
        )

    async def _register(self) -> None:
        node, status = self._manifest()
        try:
            await self.client.create(NODES, None, node)
        except ApiError as exc:
            if exc.status != 409:
                raise
        await self.client.patch_status(NODES, None, self.node_name, status)
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.node_name, "namespace": "kube-node-lease"},
            "spec": {
                "holderIdentity": self.node_name,
                "leaseDurationSeconds": 40,
                "renewTime": now_rfc3339(micro=True),
            },
        }
        try:
            await self.client.create(LEASES, "kube-node-lease", lease)
        except ApiError as exc:
            if exc.status != 409:
                raise

    async def _heartbeat_loop(self) -> None:
        since_status = 0.0
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self.client.patch(
                    LEASES,
                    "kube-node-lease",
                    self.node_name,
                    {
                        "spec": {
                            "renewTime": now_rfc3339(micro=True),
                            "holderIdentity": self.node_name,
                        }
                    },
                )
                since_status += HEARTBEAT
                if since_status >= STATUS_EVERY:
                    since_status = 0.0
                    _, status = self._manifest()
                    await self.client.patch_status(NODES, None, self.node_name, status)
            except (TimeoutError, ApiError, OSError) as exc:
                log.warning("node heartbeat failed: %s", exc)

    # -- a local-path provisioner ----------------------------------------------------------
    def _claim_changed(self, _etype: str, claim: JSON) -> None:
        meta, spec = claim.get("metadata") or {}, claim.get("spec") or {}
        if spec.get("volumeName") or meta.get("deletionTimestamp"):
            return
        task = asyncio.create_task(self._provision(claim))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _provision(self, claim: JSON) -> None:
        """Bind a pending claim to a new PersistentVolume on this node's disk.

        The kubelet keeps a claim's files in `<workdir>/claims/<ns>/<claim>` whatever the
        volume; the real scheduler only needs the claim Bound (the PV controller binds it
        to the PV whose claimRef names it)."""
        pv = persistent_volume(claim, self.workdir, self.node_name)
        try:
            await self.client.create(PVS, None, pv)
        except ApiError as exc:
            if exc.status != 409:
                log.warning("no volume for claim %s: %s", claim["metadata"]["name"], exc)

    # -- service-account credentials for pods ------------------------------------------------
    async def _pod_setup(self, pod: JSON, volume_dirs: dict[str, str]) -> dict[str, str]:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        env: dict[str, str] = {}
        for vol in spec.get("volumes") or []:
            sources = (vol.get("projected") or {}).get("sources") or []
            if not any("serviceAccountToken" in s for s in sources):
                continue
            target = Path(volume_dirs[vol["name"]])
            target.mkdir(parents=True, exist_ok=True)
            token = ""
            for src in sources:
                if "serviceAccountToken" in src:
                    token = await self._token(pod, src["serviceAccountToken"] or {})
                    _write_secret(
                        target / (src["serviceAccountToken"].get("path") or "token"), token
                    )
                elif "configMap" in src:
                    self._project_configmap(meta["namespace"], src["configMap"] or {}, target)
                elif "downwardAPI" in src:
                    for item in (src["downwardAPI"] or {}).get("items") or []:
                        if (item.get("fieldRef") or {}).get("fieldPath") == "metadata.namespace":
                            _write_secret(target / item["path"], meta["namespace"])
            kubeconfig = target / "kubeconfig"
            write_token_kubeconfig(kubeconfig, self.api_url, self.pki.ca_cert, token)
            host, _, port = self.api_url.split("://", 1)[-1].rpartition(":")
            env = {
                "KUBECONFIG": str(kubeconfig),
                "KUBERNETES_SERVICE_HOST": host,
                "KUBERNETES_SERVICE_PORT": port,
            }
        return env

    async def _token(self, pod: JSON, source: JSON) -> str:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        sa = spec.get("serviceAccountName") or "default"
        body: JSON = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": int(source.get("expirationSeconds") or 3607),
                "boundObjectRef": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta.get("uid", ""),
                },
            },
        }
        if source.get("audience"):
            body["spec"]["audiences"] = [source["audience"]]
        path = f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token"
        try:
            answer = await self.client.request("POST", path, body=body)
        except (ApiError, OSError) as exc:
            raise EnvError(f"service account token for {sa}: {exc}") from exc
        return str((answer.get("status") or {}).get("token") or "")

    def _project_configmap(self, namespace: str, src: JSON, target: Path) -> None:
        assert self.kubelet is not None
        cm = self.kubelet.configmaps.get(namespace, src.get("name", ""))
        if cm is None:
            if src.get("optional"):
                return
            raise EnvError(f'configmap "{src.get("name")}" not found')
        data = cm.get("data") or {}
        for item in src.get("items") or [{"key": k, "path": k} for k in data]:
            if item.get("key") in data:
                _write_secret(target / item.get("path", item["key"]), str(data[item["key"]]))

    # -- the kubelet API (logs) ------------------------------------------------------------
    async def _serve_kubelet_api(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", _healthz)
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self._container_logs)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=_server_context(self.pki))
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.kubelet_port = int(sockets[0].getsockname()[1])

    async def _container_logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, container = (request.match_info[k] for k in ("ns", "pod", "container"))
        q = request.query
        base = self.workdir / "logs" / "pods" / ns / pod
        previous = q.get("previous") in ("true", "1")
        path = base / (f"{container}.previous.log" if previous else f"{container}.log")
        if not path.exists():
            raise web.HTTPNotFound(text=f"no logs for container {container} of {ns}/{pod}")
        data = path.read_bytes()
        if "tailLines" in q:
            n = int(q["tailLines"])
            data = b"".join(data.splitlines(keepends=True)[-n:]) if n > 0 else b""
        if "limitBytes" in q:
            data = data[: int(q["limitBytes"])]
        if q.get("follow") not in ("true", "1") or previous:
            return web.Response(body=data, content_type="text/plain")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        await resp.write(data)
        offset = path.stat().st_size
        while self.kubelet is not None:
            await asyncio.sleep(0.2)
            size = path.stat().st_size if path.exists() else offset
            if size > offset:
                with path.open("rb") as f:
                    f.seek(offset)
                    await resp.write(f.read(size - offset))
                offset = size
            cached = self.kubelet.pods.get(ns, pod)
            if cached is None or (cached.get("status") or {}).get("phase") in (
                "Succeeded",
                "Failed",
            ):
                break
        return resp


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
