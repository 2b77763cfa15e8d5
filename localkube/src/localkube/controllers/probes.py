"""Readiness, liveness and startup probes: one check (I/O) and the threshold logic (pure).

A probe succeeds or fails per attempt; the container's probe result flips only after
`successThreshold` consecutive successes or `failureThreshold` consecutive failures, as the
kubelet's prober does. Checks run against the pod's own loopback IP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = ["ProbeTracker", "resolve_port", "run_probe"]

JSON = dict[str, Any]


def resolve_port(port: Any, container: Mapping[str, Any]) -> int | None:
    """An int port, a numeric string, or a named containerPort."""
    if isinstance(port, int):
        return port
    text = str(port or "")
    if text.isdigit():
        return int(text)
    for p in container.get("ports") or []:
        if p.get("name") == text:
            return int(p.get("containerPort", 0)) or None
    return None


@dataclass
class ProbeTracker:
    """Consecutive success/failure counting for one probe of one container."""

    success_threshold: int = 1
    failure_threshold: int = 3
    result: bool | None = None  # None: no verdict yet
    _successes: int = 0
    _failures: int = 0

    @classmethod
    def from_spec(cls, probe: Mapping[str, Any]) -> ProbeTracker:
        return cls(
            success_threshold=max(1, int(probe.get("successThreshold") or 1)),
            failure_threshold=max(1, int(probe.get("failureThreshold") or 3)),
        )

    def record(self, ok: bool) -> bool | None:
        """Record one attempt; return the (possibly new) verdict."""
        if ok:
            self._successes += 1
            self._failures = 0
            if self._successes >= self.success_threshold:
                self.result = True
        else:
            self._failures += 1
            self._successes = 0
            if self._failures >= self.failure_threshold:
                self.result = False
        return self.result


async def run_probe(
    probe: Mapping[str, Any],
    container: Mapping[str, Any],
    pod_ip: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> bool:
    """Run one probe attempt; any error or timeout is a failure."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "httpGet" in probe:
            return await _http(probe["httpGet"], container, pod_ip, timeout)
        if "tcpSocket" in probe:
            return await _tcp(probe["tcpSocket"], container, pod_ip, timeout)
        if "exec" in probe:
            return await _exec(probe["exec"], env, cwd, timeout)
    except (OSError, TimeoutError, aiohttp.ClientError, ValueError):
        return False
    return False


async def _http(
    spec: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str, timeout: float
) -> bool:
    port = resolve_port(spec.get("port"), container)
    if port is None:
        return False
    host = spec.get("host") or pod_ip
    scheme = str(spec.get("scheme") or "HTTP").lower()
    path = str(spec.get("path") or "/")
    headers = {h.get("name", ""): h.get("value", "") for h in spec.get("httpHeaders") or []}
    headers.setdefault("User-Agent", "kube-probe/1.32")
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.get(f"{scheme}://{host}:{port}{path}", headers=headers, ssl=False) as resp,
    ):
        return 200 <= resp.status < 400


async def _tcp(
    spec: Mapping[str, Any], container: Mapping[str, Any], pod_ip: str, timeout: float
) -> bool:
    port = resolve_port(spec.get("port"), container)
    if port is None:
        return False
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(spec.get("host") or pod_ip, port), timeout
    )
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _exec(
    spec: Mapping[str, Any], env: Mapping[str, str] | None, cwd: str | None, timeout: float
) -> bool:
    argv = [str(a) for a in spec.get("command") or []]
    if not argv:
        return False
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env or os.environ),
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return await asyncio.wait_for(proc.wait(), timeout) == 0
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return False
