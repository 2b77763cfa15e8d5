"""Holding requests for an LLM that has no ready replica (scaled to zero, or restarting).

A request waits in its LLM's bounded queue (`Traffic.hold`) until the catalog reports a
ready endpoint for a release with weight, or ``hold_timeout`` passes: then it is answered
503 with Retry-After, never left without an answer. Each catalog change releases the
waiters of every LLM that has become servable, in arrival order, and records the cold
start they saw.

While requests wait, the LLM's starting pods are checked every ``probe_interval`` with
their own readiness check (`Catalog.starting_pods`, `Catalog.vouch`): a pod is then routed
to as soon as its server turns ready, not up to a readiness-probe period (1 s) plus a status
write later, when the kubelet would report it. Only while someone waits: one small GET per
starting pod and interval, none otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp

from kubellm.gateway.catalog import Catalog, LLMView, PodView
from kubellm.gateway.metrics import GatewayMetrics
from kubellm.gateway.problems import GatewaySettings, Problem
from kubellm.gateway.routing import retry_after_seconds
from kubellm.gateway.traffic import Traffic

__all__ = ["Holding"]

log = logging.getLogger(__name__)


class Holding:
    """Waits for a servable LLM; released by the catalog's change callback."""

    def __init__(
        self,
        catalog: Catalog,
        traffic: Traffic,
        metrics: GatewayMetrics,
        settings: GatewaySettings,
        clock: Callable[[], float],
    ) -> None:
        self.catalog = catalog
        self.traffic = traffic
        self.metrics = metrics
        self.settings = settings
        self._clock = clock
        self._probers: dict[str, asyncio.Task[None]] = {}

    async def close(self) -> None:
        probers = list(self._probers.values())
        for task in probers:
            task.cancel()
        await asyncio.gather(*probers, return_exceptions=True)

    def servable(self, view: LLMView) -> bool:
        ready = self.catalog.ready_counts(view)
        return any(rt.weight > 0 and ready.get(rt.service, 0) > 0 for rt in view.routes)

    def on_catalog_change(self) -> None:
        self.traffic.track([v.key for v in self.catalog.all_llms()])
        for key in self.traffic.holding():
            namespace, _, name = key.partition("/")
            view = self.catalog.llms.get((namespace, name))
            if view is None or not self.servable(view):
                continue
            cold = self.traffic.release(key)
            self.metrics.held.labels(key).set(0)
            if cold is not None:
                self.metrics.cold_starts.labels(key).inc()
                self.metrics.cold_start_seconds.labels(key).observe(cold.seconds)
                log.info(
                    "%s: cold start took %.2f s; forwarding %d held request(s)",
                    key,
                    cold.seconds,
                    cold.released,
                )

    async def wait_until_servable(self, view: LLMView, arrived: float) -> LLMView:
        """Hold the request until its LLM has a ready endpoint; the view to route with."""
        key = view.key
        deadline = arrived + self.settings.hold_timeout
        while not self.servable(view):
            fut = self.traffic.hold(key)
            if fut is None:
                raise Problem(
                    503,
                    f"{view.name}: {self.settings.max_held} requests already wait for a "
                    "replica to start; retry later",
                    "too_many_held_requests",
                    retry_after=self.settings.retry_after,
                    kind="server_error",
                )
            self.metrics.held.labels(key).set(self.traffic.held(key))
            if key not in self._probers and self.settings.probe_interval > 0:
                self._probers[key] = asyncio.create_task(self._probe_starting(view))
            try:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(asyncio.shield(fut), remaining)
            except TimeoutError:
                waited = self._clock() - arrived
                self.metrics.hold_timeouts.labels(key).inc()
                raise Problem(
                    503,
                    f"{view.name}: no replica became ready within {waited:.0f} s "
                    "(scaling from zero); retry later",
                    "model_starting",
                    retry_after=retry_after_seconds(waited, self.settings.hold_timeout),
                    kind="server_error",
                ) from None
            finally:
                self.traffic.drop(key, fut)
                self.metrics.held.labels(key).set(self.traffic.held(key))
            fresh = self.catalog.llms.get((view.namespace, view.name))
            if fresh is None:
                raise Problem(404, f"the model {view.name!r} was deleted", "model_not_found")
            view = fresh
        return view

    async def _probe_starting(self, view: LLMView) -> None:
        """Run the readiness checks of ``view``'s starting pods while requests wait for it."""
        key = view.key
        try:
            timeout = aiohttp.ClientTimeout(total=1.0)  # the kubelet's default timeoutSeconds
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while self.traffic.held(key) > 0:
                    fresh = self.catalog.llms.get((view.namespace, view.name))
                    if fresh is None or self.servable(fresh):
                        return
                    pods = self.catalog.starting_pods(fresh)
                    await asyncio.gather(*(self._check(session, pod) for pod in pods))
                    await asyncio.sleep(self.settings.probe_interval)
        finally:
            self._probers.pop(key, None)

    async def _check(self, session: aiohttp.ClientSession, pod: PodView) -> None:
        assert pod.readiness is not None
        path, target = pod.readiness
        port = pod.port_for(target)
        if port is None or not pod.ip:
            return
        host = f"[{pod.ip}]" if ":" in pod.ip else pod.ip
        try:
            async with session.get(f"http://{host}:{port}{path}", allow_redirects=False) as resp:
                passed = 200 <= resp.status < 400  # the kubelet's rule for HTTP probes
        except (aiohttp.ClientError, OSError, TimeoutError):
            return
        if passed and self.catalog.vouch(pod):
            log.info(
                "%s/%s passed its readiness check (%s): routing to it before the kubelet says so",
                pod.namespace,
                pod.name,
                path,
            )
