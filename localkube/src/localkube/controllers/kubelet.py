"""The scheduler and kubelet of the single node `localkube-node`.

The scheduler binds every unscheduled Pod to the node. The kubelet runs each container's
`command`+`args` as a local process (the image is ignored) in a per-pod working directory,
with the environment Kubernetes would give it, its volumes as local directories, its own
loopback IP, logs in files the API server serves for `kubectl logs`, probes deciding
readiness and restarts, and restart policies with CrashLoopBackOff. Deleting a Pod sends
SIGTERM to its process groups, SIGKILL after the grace period, then removes the object
(`gracePeriodSeconds=0`), which is the kubelet's half of graceful deletion.

Host environment: a container inherits the emulator's environment (so `python` and
`kubellm` resolve to the same interpreter: its directory is put first on PATH), then gets
HOSTNAME, service links, KUBECONFIG for this cluster and KUBELLM_TERMINATION_LOG, then the
Pod's `envFrom`/`env`. `KUBELLM_MOUNTS` (JSON) maps each mountPath to its local directory.
Each container process is tied to the cluster's lifetime: the kernel kills it if the
cluster's process dies, and the cluster's guard tag in its environment lets the watchdog
find whatever it started in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from localkube.client import PODS, ApiError, KubeClient
from localkube.controllers.base import Clock, Controller, EventRecorder, Informer, Key
from localkube.controllers.dns import ClusterDns
from localkube.controllers.env import Sources
from localkube.controllers.faults import PodFaults
from localkube.controllers.httpfaults import HttpFaultFiles
from localkube.controllers.podruntime import PodRuntime
from localkube.lifetime import Guard
from localkube.networking import IpPool

__all__ = ["NODE_NAME", "Kubelet", "PodSetup"]

#: `pod_setup(pod, volume_dirs) -> env overrides`; raises EnvError to retry (FailedMount)
PodSetup = Callable[[dict[str, Any], dict[str, str]], Awaitable[dict[str, str]]]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
NODE_NAME = "localkube-node"


def _service_links(services: list[JSON]) -> dict[str, str]:
    """`<NAME>_SERVICE_HOST`/`_PORT` for the namespace's services (enableServiceLinks)."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        name = str(svc["metadata"]["name"]).upper().replace("-", "_")
        env[f"{name}_SERVICE_HOST"] = ip
        env[f"{name}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                env[f"{name}_SERVICE_PORT_{str(p['name']).upper().replace('-', '_')}"] = str(
                    p.get("port")
                )
    return env


class Kubelet(Controller):
    """Scheduler + kubelet for all Pods (one node)."""

    name = "kubelet"

    def __init__(
        self,
        client: KubeClient,
        pods: Informer,
        configmaps: Informer,
        secrets: Informer,
        services: Informer | None,
        *,
        workdir: Path,
        log_dir: Path,
        clock: Clock,
        ip_pool: IpPool,
        faults: PodFaults,
        kubeconfig: Path | None = None,
        api_url: str = "",
        node_name: str = NODE_NAME,
        schedule: bool = True,
        pod_setup: PodSetup | None = None,
        guard: Guard | None = None,
        keep_fds: Sequence[int] = (),
    ) -> None:
        super().__init__()
        #: tags every container process so that it dies with the cluster (see lifetime.py)
        self.guard = guard
        #: descriptors each container inherits (the claim on the cluster's address blocks)
        self.keep_fds = tuple(keep_fds)
        #: the Node this kubelet runs pods for
        self.node_name = node_name
        #: localkube binds unscheduled pods itself; next to a real kube-scheduler it waits
        self.schedule = schedule
        #: called once a pod's volumes exist; returns env overrides (a real cluster writes the
        #: pod's service-account credentials here and hands it a kubeconfig of its own)
        self.pod_setup = pod_setup
        self.client = client
        self.pods = pods
        self.configmaps = configmaps
        self.secrets = secrets
        self.services = services
        self.workdir = workdir
        self.log_dir = log_dir
        self.clock = clock
        self.ip_pool = ip_pool
        self.faults = faults
        #: each running container's http-errors fault, in a file its pod site reads
        self.http_faults = HttpFaultFiles(faults)
        self.kubeconfig = kubeconfig
        self.api_url = api_url
        self.runtimes: dict[Key, PodRuntime] = {}
        #: cluster names for the containers (see dns.py)
        self.dns = (
            ClusterDns(services, pods, workdir / "cluster-dns.json")
            if services is not None
            else None
        )
        self.recorder = EventRecorder(client, "kubelet")
        self.scheduler_events = EventRecorder(client, "default-scheduler")
        pods.add_handler(self.enqueue_obj)

    # -- reconcile -----------------------------------------------------------------------
    async def reconcile(self, key: Key) -> float | None:
        pod = self.pods.get(*key)
        rt = self.runtimes.get(key)
        if rt is not None and (pod is None or rt.uid != pod["metadata"].get("uid")):
            await rt.kill_now()
            self._forget(key, rt)
            rt = None
        if pod is None:
            return None
        meta, spec = pod["metadata"], pod.get("spec") or {}
        if not spec.get("nodeName"):
            if meta.get("deletionTimestamp"):
                await self._remove(pod)
                return None
            if not self.schedule:
                return None
            pod = await self._schedule(pod)
            spec = pod.get("spec") or {}
        if spec.get("nodeName") != self.node_name:
            return None
        if meta.get("deletionTimestamp"):
            if rt is None:
                await self._remove(pod)
            else:
                grace = meta.get("deletionGracePeriodSeconds")
                if grace is None:
                    grace = spec.get("terminationGracePeriodSeconds", 30)
                rt.request_stop(float(grace))
            return None
        if rt is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return None
            rt = PodRuntime(self, pod)
            self.runtimes[key] = rt
            rt.start()
        else:
            rt.pod = pod
        return None

    def _forget(self, key: Key, rt: PodRuntime) -> None:
        if self.runtimes.get(key) is rt:
            del self.runtimes[key]
        self.ip_pool.release(rt.uid)
        self.http_faults.forget(rt.dir)

    async def _schedule(self, pod: JSON) -> JSON:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        patched = await self.client.patch(PODS, ns, name, {"spec": {"nodeName": self.node_name}})
        self.pods.upsert(patched)
        self.scheduler_events.event(
            pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {self.node_name}"
        )
        return patched

    async def _remove(self, pod: JSON) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(ApiError):
            await self.client.delete(
                PODS, meta["namespace"], meta["name"], grace_period_seconds=0, uid=meta.get("uid")
            )

    def start(self) -> None:
        super().start()
        if self.dns is not None:
            self.dns.start()
        self.http_faults.start(
            lambda: [(rt.dir, rt.pod, rt.specs) for rt in self.runtimes.values() if rt.procs]
        )

    async def stop(self) -> None:
        if self.dns is not None:
            await self.dns.stop()
        await self.http_faults.stop()
        await super().stop()
        await asyncio.gather(*(rt.kill_now() for rt in list(self.runtimes.values())))
        self.runtimes.clear()

    def pids(self, namespace: str, name: str) -> list[int]:
        """Process ids of a pod's running containers (the HPA reads CPU from them)."""
        rt = self.runtimes.get((namespace, name))
        return [] if rt is None else [p.pid for p in rt.procs.values() if p.returncode is None]

    def all_pids(self) -> list[int]:
        return [
            p.pid
            for rt in self.runtimes.values()
            for p in rt.procs.values()
            if p.returncode is None
        ]

    # -- environment ---------------------------------------------------------------------
    def sources(self, namespace: str) -> Sources:
        return Sources(
            configmaps={o["metadata"]["name"]: o for o in self.configmaps.items(namespace)},
            secrets={o["metadata"]["name"]: o for o in self.secrets.items(namespace)},
        )

    def base_env(self, pod: JSON) -> dict[str, str]:
        env = dict(os.environ)
        exe_dir = str(Path(sys.executable).parent)
        env["PATH"] = exe_dir + os.pathsep + env.get("PATH", "")
        meta, spec = pod["metadata"], pod.get("spec") or {}
        env["HOSTNAME"] = str(spec.get("hostname") or meta["name"])
        if self.services is not None and spec.get("enableServiceLinks", True):
            env.update(_service_links(self.services.items(meta["namespace"])))
        if self.api_url:
            hostport = self.api_url.split("://", 1)[-1].rstrip("/")
            host, _, port = hostport.rpartition(":")
            env["KUBERNETES_SERVICE_HOST"] = host
            env["KUBERNETES_SERVICE_PORT"] = port
        if self.pod_setup is not None:
            env.pop("KUBECONFIG", None)  # never the node's own credentials
        elif self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        env["KUBELLM_LOCALKUBE"] = "1"
        if self.dns is not None:
            env.update(self.dns.env(str(meta.get("namespace") or "default")))
        return env if self.guard is None else self.guard.env(env)
