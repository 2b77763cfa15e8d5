"""HTTP faults in running pods: a share of a container's requests answered with an error.

An `http-errors` pod fault (see `faults.py`) models a release that is up, Ready and broken:
it answers `rate` of its requests with `status` instead of its app's answer. That is a
fault of the HTTP layer, so it cannot act on the process as the other pod faults do, and it
must start and stop while the pod runs (a release promoted, then broken).

How it reaches the app: every Python container imports the pod site
(`localkube/podsite/sitecustomize.py`, on its PYTHONPATH for cluster DNS already). When the
container imports uvicorn, the pod site wraps the ASGI app that uvicorn serves in
`localkube_http_faults.HttpFaultApp`, which reads the container's fault file (its path is
`KUBELLM_HTTP_FAULTS`) whenever the file changes. This kubelet keeps that file equal to the
fault that holds now, re-matching the registry and the pod's annotation every `period`
seconds. We chose this over a proxy in front of the container port because the app binds
the pod IP and port itself (a proxy would have to move it to another port and the probes,
Services and `kubectl port-forward` with it), and over an environment variable alone
because an environment is fixed at the container's start. The cost is the limit: it acts
on apps served by uvicorn (kubellm serve, vLLM's OpenAI server, FastAPI or Starlette apps),
not on other servers or non-Python containers.

The paths of the container's httpGet probes are never failed: a broken release still looks
Ready to Kubernetes, which is the point of the fault (readiness does not catch it; only its
live error rate does). The same kubelet runs the pods of the real control plane
(`realkube`), so the fault works on both clusters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from localkube.controllers.faults import PodFaults

__all__ = ["ENV", "HttpFaultFiles", "fault_file", "probe_paths", "wanted"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]

#: the container's environment variable naming its fault file
ENV = "KUBELLM_HTTP_FAULTS"
KIND = "http-errors"
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")

#: what the sync loop visits: (pod directory, pod, its container specs) of each running pod
Pods = Callable[[], Iterable[tuple[Path, Mapping[str, Any], Iterable[Mapping[str, Any]]]]]


def fault_file(pod_dir: Path, container: str) -> Path:
    return pod_dir / "http-faults" / f"{container}.json"


def probe_paths(container: Mapping[str, Any]) -> list[str]:
    """The paths of the container's httpGet probes (without their query strings)."""
    paths = set()
    for key in PROBES:
        http_get = (container.get(key) or {}).get("httpGet")
        if http_get is not None:
            paths.add(str(http_get.get("path") or "/").split("?", 1)[0])
    return sorted(paths)


def wanted(faults: PodFaults, pod: Mapping[str, Any], container: Mapping[str, Any]) -> JSON:
    """The fault file's content for this container now: `{}` when no fault holds."""
    fault = faults.active(pod, str(container.get("name", "")), KIND)
    if fault is None or fault.rate <= 0:
        return {}
    return {
        "kind": KIND,
        "id": fault.id,
        "rate": fault.rate,
        "status": fault.status,
        "exempt": probe_paths(container),
    }


class HttpFaultFiles:
    """Keeps each running container's fault file equal to `wanted()` (atomic rewrites)."""

    def __init__(self, faults: PodFaults, period: float = 0.25) -> None:
        self.faults = faults
        self.period = period
        self._written: dict[Path, JSON] = {}
        self._task: asyncio.Task[None] | None = None

    def sync_pod(
        self, pod_dir: Path, pod: Mapping[str, Any], containers: Iterable[Mapping[str, Any]]
    ) -> None:
        for container in containers:
            path = fault_file(pod_dir, str(container.get("name", "")))
            content = wanted(self.faults, pod, container)
            if self._written.get(path) == content and path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(content))
            os.replace(tmp, path)
            if content or path in self._written:
                log.info("http fault for %s: %s", path.parent.parent.name, content or "none")
            self._written[path] = content

    def forget(self, pod_dir: Path) -> None:
        for path in [p for p in self._written if p.parent.parent == pod_dir]:
            del self._written[path]

    def start(self, pods: Pods) -> None:
        self._task = asyncio.create_task(self._loop(pods), name="http-faults")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self, pods: Pods) -> None:
        while True:
            await asyncio.sleep(self.period)
            for pod_dir, pod, containers in list(pods()):
                try:
                    self.sync_pod(pod_dir, pod, containers)
                except OSError as exc:
                    log.warning("http fault file of %s not written: %s", pod_dir.name, exc)
