"""The operator's reading of demand: long polls of every gateway replica's ``/demand``.

The gateway never writes to the API server; the operator pulls (see `kubellm.gateway.demand`
for the format and why). ``KUBELLM_GATEWAY_DEMAND_URL`` names the gateways' admin endpoint,
e.g. ``http://kubellm-gateway-admin.kubellm-system.svc:9090/demand`` on a headless Service:
its host name is resolved every ``resolve_every`` seconds and each address is polled on its
own, so every replica's held requests count. A replica's report is used while it is fresh;
with no fresh report at all the demand is unknown (``None``) and the planner neither scales
anything to zero nor leaves anything there.

News (a request now held for an LLM, a cold start finished) nudges that LLM's reconcile
daemon at once (see `handlers`: kopf runs the reconcile); everything else waits for the
usual triggers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from kubellm.gateway.demand import DemandReport, LLMDemand, combine, from_json

if TYPE_CHECKING:
    from kubellm.operator.reconciling import Reconciler

__all__ = ["DemandBoard", "follow_demand", "poll_gateways"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Seen:
    report: DemandReport
    at: float


class DemandBoard:
    """The latest report of each gateway replica. Written by the poller on the event loop,
    read by reconciles in worker threads, hence the lock."""

    def __init__(self, stale_after: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.stale_after = stale_after
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, _Seen] = {}

    def _fresh(self) -> list[DemandReport]:
        now = self._clock()
        return [s.report for s in self._seen.values() if now - s.at <= self.stale_after]

    def update(self, source: str, report: DemandReport) -> list[str]:
        """Record ``source``'s report; the LLMs (``namespace/name``) that are news now: a
        request held where none was, or a cold start finished."""
        with self._lock:
            before = combine(self._fresh())
            self._seen[source] = _Seen(report, self._clock())
            after = combine(self._fresh())
        news = []
        for key, now in after.items():
            old = before.get(key)
            if (now.held > 0 and (old is None or old.held == 0)) or (
                old is not None and now.cold_starts > old.cold_starts
            ):
                news.append(key)
        return news

    def drop(self, source: str) -> None:
        with self._lock:
            self._seen.pop(source, None)

    def get(self, namespace: str, name: str) -> LLMDemand | None:
        """The combined demand of one LLM; None when no gateway reported lately."""
        with self._lock:
            fresh = self._fresh()
        if not fresh:
            return None
        found = combine(fresh).get(f"{namespace}/{name}")
        if found is None:  # no replica has seen it yet: idle at most since the newest started
            return LLMDemand(idle_seconds=min(r.uptime_seconds for r in fresh))
        return found


def _with_host(url: str, address: str) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


async def _addresses(url: str) -> set[str]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(
        parts.hostname, port, type=socket.SOCK_STREAM
    )
    return {str(info[4][0]) for info in infos}


async def _poll_one(
    session: aiohttp.ClientSession,
    url: str,
    board: DemandBoard,
    on_news: Callable[[str, str], None],
    wait: float,
) -> None:
    instance, seq = "", -1
    while True:
        try:
            params = {"instance": instance, "after": str(seq), "wait": str(wait)}
            timeout = aiohttp.ClientTimeout(total=wait + 15)
            async with session.get(url, params=params, timeout=timeout) as resp:
                resp.raise_for_status()
                report = from_json(await resp.json())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a gateway restarting or gone: its report goes stale
            log.debug("demand poll of %s failed: %s", url, exc)
            instance, seq = "", -1
            await asyncio.sleep(1.0)
            continue
        instance, seq = report.instance, report.seq
        for key in board.update(url, report):
            namespace, _, name = key.partition("/")
            on_news(namespace, name)


async def poll_gateways(
    url: str,
    board: DemandBoard,
    on_news: Callable[[str, str], None],
    *,
    wait: float = 25.0,
    resolve_every: float = 30.0,
) -> None:
    """Poll every address ``url``'s host resolves to, until cancelled."""
    tasks: dict[str, asyncio.Task[None]] = {}
    async with aiohttp.ClientSession() as session:
        try:
            while True:
                try:
                    addresses = await _addresses(url)
                except OSError as exc:
                    log.warning("gateway demand: cannot resolve %s: %s", url, exc)
                    addresses = set()
                for address in addresses - tasks.keys():
                    target = _with_host(url, address)
                    log.info("reading demand from gateway %s", target)
                    tasks[address] = asyncio.create_task(
                        _poll_one(session, target, board, on_news, wait)
                    )
                for address in tasks.keys() - addresses:
                    tasks.pop(address).cancel()
                    board.drop(_with_host(url, address))
                await asyncio.sleep(resolve_every)
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)


async def follow_demand(
    url: str, reconciler: Reconciler, nudge: Callable[[str, str, str], None]
) -> None:
    """Feed the gateways' demand to ``reconciler``: its plans read it, and news nudges the
    LLM concerned (``nudge(namespace, name, why)``, on the event loop, never blocking).
    Runs until cancelled."""
    board = DemandBoard()
    reconciler.demand = board.get

    def on_news(namespace: str, name: str) -> None:
        nudge(namespace, name, "demand")

    try:
        await poll_gateways(url, board, on_news)
    finally:
        reconciler.demand = None
