"""Networking on loopback: pod IPs and the service proxy.

Linux routes the whole of 127.0.0.0/8 to the loopback interface, so every Pod gets its own
address (`status.podIP`, from its instance's pod block, 127.64.x.y for the first instance)
and binds its ports there: three replicas can all listen on port 8000 as they do on a
cluster. Manifests pass `--host $(POD_IP)` with `POD_IP` from the downward API
(`fieldRef: status.podIP`), which works unchanged on a real cluster. Each Service has a
cluster IP (from the service block, 127.96.x.y for the first instance, allocated by the API
server) and this module's proxy listens on `clusterIP:port` and forwards each TCP connection
round-robin to a ready endpoint (`podIP:targetPort`), re-reading the endpoints on every
connection, the job kube-proxy does with iptables. Instances running at the same time use
disjoint blocks (see :mod:`localkube.instances`).

Where a platform only allows 127.0.0.1 (macOS without `ifconfig lo0 alias`), pods all get
127.0.0.1 (so replicas must use distinct ports) and each service port is served on a free
port of 127.0.0.1 instead of its cluster IP; the mapping is logged at INFO and kept in
`ServiceProxy.fallback_addresses` (`(namespace, service, port) -> "127.0.0.1:PORT"`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import itertools
import logging
import socket
from collections.abc import Mapping
from typing import Any

from localkube.controllers.base import Informer
from localkube.controllers.meta import match_labels
from localkube.controllers.probes import resolve_port

__all__ = ["IpPool", "ServiceProxy", "endpoints_for", "loopback_aliases_work"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]


def loopback_aliases_work(probe_ip: str = "127.64.0.1") -> bool:
    """True if this host lets a process bind loopback addresses other than 127.0.0.1."""
    with socket.socket() as s:
        try:
            s.bind((probe_ip, 0))
        except OSError:
            return False
    return True


class IpPool:
    """Hands out pod IPs from a loopback CIDR, reusing an address only after release.

    The network and broadcast addresses of the CIDR are never handed out (an instance
    claims its blocks on the broadcast address).
    """

    def __init__(self, cidr: str = "127.64.0.0/16", *, aliases: bool = True) -> None:
        self.network = ipaddress.IPv4Network(cidr)
        self.aliases = aliases
        self._by_owner: dict[str, str] = {}
        self._used: set[str] = set()
        self._cursor = 1

    def allocate(self, owner: str, preferred: str | None = None) -> str:
        if not self.aliases:
            return "127.0.0.1"
        if owner in self._by_owner:
            return self._by_owner[owner]
        ip: str | None = None
        if preferred and preferred not in self._used:
            try:
                if ipaddress.IPv4Address(preferred) in self.network:
                    ip = preferred
            except ValueError:
                ip = None
        size = self.network.num_addresses
        while ip is None:
            candidate = self.network.network_address + self._cursor
            self._cursor = self._cursor % (size - 2) + 1
            text = str(candidate)
            if text not in self._used:
                ip = text
            if len(self._used) >= size - 2:
                raise RuntimeError("pod IP pool exhausted")
        self._used.add(ip)
        self._by_owner[owner] = ip
        return ip

    def release(self, owner: str) -> None:
        ip = self._by_owner.pop(owner, None)
        if ip:
            self._used.discard(ip)


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True") and bool(status.get("podIP"))
    return False


def endpoints_for(
    service: Mapping[str, Any], port: Mapping[str, Any], pods: list[JSON]
) -> list[tuple[str, int]]:
    """Ready `(podIP, targetPort)` pairs for one service port, in a stable order."""
    selector = (service.get("spec") or {}).get("selector") or {}
    ns = (service.get("metadata") or {}).get("namespace")
    target = port.get("targetPort", port.get("port"))
    out: list[tuple[str, int]] = []
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name"))):
        meta = pod.get("metadata") or {}
        if meta.get("namespace") != ns or not match_labels(selector, meta.get("labels")):
            continue
        if not _pod_ready(pod):
            continue
        resolved: int | None = None
        for c in (pod.get("spec") or {}).get("containers") or []:
            resolved = resolve_port(target, c)
            if resolved:
                break
        if resolved:
            out.append((str(pod["status"]["podIP"]), resolved))
    return out


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


class ServiceProxy:
    """Listens on each Service's `clusterIP:port` and forwards to ready endpoints."""

    def __init__(self, services: Informer, pods: Informer, *, aliases: bool = True) -> None:
        self.services = services
        self.pods = pods
        self.aliases = aliases
        # (ns, name, port) -> (server, bound address, clusterIP, port spec)
        self._servers: dict[tuple[str, str, int], tuple[asyncio.Server, str, str]] = {}
        self._rr: dict[tuple[str, str, int], itertools.count[int]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.fallback_addresses: dict[tuple[str, str, int], str] = {}
        services.add_handler(lambda *_: self._wake.set())

    def start(self) -> None:
        self._task = asyncio.create_task(self._sync_loop(), name="service-proxy")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for server, _, _ in self._servers.values():
            server.close()
        for t in list(self._conns):
            t.cancel()
        for server, _, _ in self._servers.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
        self._servers.clear()

    async def _sync_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.sync()
            except Exception:
                log.exception("service proxy sync failed")

    def _wanted(self) -> dict[tuple[str, str, int], tuple[str, JSON]]:
        wanted: dict[tuple[str, str, int], tuple[str, JSON]] = {}
        for svc in self.services.items():
            meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
            ip = spec.get("clusterIP")
            if not ip or ip == "None" or meta.get("deletionTimestamp"):
                continue
            for p in spec.get("ports") or []:
                if str(p.get("protocol") or "TCP") != "TCP" or not p.get("port"):
                    continue
                wanted[(meta.get("namespace", ""), meta.get("name", ""), int(p["port"]))] = (ip, p)
        return wanted

    async def sync(self) -> None:
        wanted = self._wanted()
        for key in list(self._servers):
            server, _, ip = self._servers[key]
            if key not in wanted or wanted[key][0] != ip:
                server.close()
                del self._servers[key]
                self.fallback_addresses.pop(key, None)
                log.info("service proxy: stopped %s/%s:%d", key[0], key[1], key[2])
        for key, (ip, _) in wanted.items():
            if key in self._servers:
                continue
            host, port = (ip, key[2]) if self.aliases else ("127.0.0.1", 0)
            try:
                server = await asyncio.start_server(
                    functools.partial(self._accept, key), host, port, reuse_address=True
                )
            except OSError as exc:
                log.warning(
                    "service proxy: cannot bind %s:%d for %s/%s: %s",
                    host,
                    port,
                    key[0],
                    key[1],
                    exc,
                )
                continue
            bound = server.sockets[0].getsockname()
            address = f"{bound[0]}:{bound[1]}"
            self._servers[key] = (server, address, ip)
            if not self.aliases:
                self.fallback_addresses[key] = address
            log.info(
                "service proxy: %s/%s %s:%d -> listening on %s", key[0], key[1], ip, key[2], address
            )

    def _accept(
        self, key: tuple[str, str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.create_task(self._forward(key, reader, writer))
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    def endpoints(self, namespace: str, name: str, port: int) -> list[tuple[str, int]]:
        svc = self.services.get(namespace, name)
        if svc is None:
            return []
        for p in (svc.get("spec") or {}).get("ports") or []:
            if int(p.get("port") or 0) == port:
                return endpoints_for(svc, p, self.pods.items(namespace))
        return []

    async def _forward(
        self, key: tuple[str, str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        eps = self.endpoints(*key)
        counter = self._rr.setdefault(key, itertools.count())
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        if eps:
            start = next(counter)
            for i in range(len(eps)):
                host, port = eps[(start + i) % len(eps)]
                try:
                    upstream = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
                    break
                except (OSError, TimeoutError):
                    continue
        if upstream is None:
            writer.close()  # no ready endpoint: the client sees the connection refused/reset
            return
        up_reader, up_writer = upstream
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()
