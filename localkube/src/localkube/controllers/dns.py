"""In-cluster names for pods: `<svc>.<ns>.svc[.cluster.local]` and Indexed-Job pod hosts.

A pod here is a local process on the host's resolver, which knows nothing of Services. The
kubelet therefore keeps one small JSON file of records (Service names to cluster IPs, or to
ready pod IPs for headless Services; `<hostname>.<subdomain>.<ns>.svc` to pod IPs) and every
Python container imports `localkube/src/localkube/podsite/sitecustomize.py`, which answers those
names from the file before asking the system resolver. All of kubellm's containers are
Python, so this covers what they call (MLflow, the candidate Service, torchrun peers);
a non-Python process still needs cluster IPs. The records are computed by a pure function.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from localkube.controllers.base import Informer

__all__ = ["DOMAIN", "ClusterDns", "records"]

log = logging.getLogger(__name__)

DOMAIN = "cluster.local"
PODSITE = Path(__file__).resolve().parents[1] / "podsite"


def _ready(pod: Mapping[str, Any]) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def records(
    services: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> dict[str, list[str]]:
    """Fully qualified name -> addresses, as cluster DNS would answer them."""
    pods = list(pods)
    out: dict[str, list[str]] = {}
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ns, name = meta.get("namespace", "default"), meta.get("name", "")
        fqdn = f"{name}.{ns}.svc.{DOMAIN}"
        ip = spec.get("clusterIP") or ""
        if ip and ip != "None":
            out[fqdn] = [ip]
            continue
        selector = spec.get("selector") or {}
        ips = sorted(
            str((p.get("status") or {}).get("podIP"))
            for p in pods
            if (p.get("metadata") or {}).get("namespace") == ns
            and _selects(selector, (p.get("metadata") or {}).get("labels") or {})
            and (p.get("status") or {}).get("podIP")
            and (_ready(p) or spec.get("publishNotReadyAddresses"))
        )
        if ips:
            out[fqdn] = ips
    for pod in pods:
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        ip = (pod.get("status") or {}).get("podIP")
        if ip and spec.get("hostname") and spec.get("subdomain"):
            ns = meta.get("namespace", "default")
            out[f"{spec['hostname']}.{spec['subdomain']}.{ns}.svc.{DOMAIN}"] = [str(ip)]
    return dict(sorted(out.items()))


class ClusterDns:
    """Keeps `path` equal to `records()` of the informers' caches (atomic rewrites)."""

    def __init__(self, services: Informer, pods: Informer, path: Path, period: float = 0.5):
        self.services = services
        self.pods = pods
        self.path = path
        self.period = period
        self._task: asyncio.Task[None] | None = None
        self._written: dict[str, list[str]] | None = None

    def env(self, namespace: str) -> dict[str, str]:
        """What a container needs to resolve cluster names (PYTHONPATH is prepended)."""
        python_path = os.pathsep.join(
            p for p in (str(PODSITE), os.environ.get("PYTHONPATH", "")) if p
        )
        return {
            "KUBELLM_CLUSTER_DNS": str(self.path),
            "KUBELLM_POD_NAMESPACE": namespace,
            "PYTHONPATH": python_path,
        }

    def sync(self) -> None:
        wanted = records(self.services.items(), self.pods.items())
        if wanted == self._written:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(wanted))
        os.replace(tmp, self.path)
        self._written = wanted

    def start(self) -> None:
        self.sync()
        self._task = asyncio.create_task(self._loop(), name="cluster-dns")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                self.sync()
            except OSError as exc:
                log.warning("cluster DNS records not written: %s", exc)
