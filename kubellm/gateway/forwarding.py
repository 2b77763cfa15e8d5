"""Forwarding one request to a pod of an LLM's release, streaming the answer back.

The release is drawn by the weights in the LLM's status, the pod is the ready one with the
fewest requests in flight from this gateway. The answer is streamed through as it arrives:
each chunk is written to the client before the next is read from the pod, so a slow reader
slows the pod's socket (TCP backpressure) instead of filling the gateway's memory. A client
that disconnects cancels its handler, which closes the connection to the pod, and `kubellm
serve` drops the sequence from its batch. A connect failure or a 503 (a pod starting or
draining) is retried once on another pod, only while nothing has been sent to the client.
Each answer from a pod carries the header ``X-Kubellm-Release``: the release it was drawn
for (the one its figures count under), so a client can tell which version answered.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from kubellm.gateway.catalog import Catalog, LLMView
from kubellm.gateway.metrics import GatewayMetrics
from kubellm.gateway.problems import GatewaySettings, Problem
from kubellm.gateway.routing import Endpoint, Failure, pick_endpoint, pick_release, should_retry
from kubellm.gateway.traffic import Traffic

__all__ = ["RELEASE_HEADER", "Answered", "Forwarder"]

log = logging.getLogger(__name__)

#: not forwarded in either direction (RFC 9110 7.6.1), plus what aiohttp recomputes
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


#: the response header naming the release that answered
RELEASE_HEADER = "X-Kubellm-Release"

#: a JSON answer longer than this is not parsed for its token count
_MAX_PARSED_BODY = 1 << 20


@dataclass
class Answered:
    """What the forwarding learnt about one answer, for the per-release windows
    (`windows`): filled in as it goes, so a request that fails still names its release."""

    #: the release drawn for the request ("" before one was drawn)
    release: str = ""
    #: seconds from arrival to the first byte of the answer
    ttfb: float | None = None
    #: completion tokens the answer carried (None: unknown)
    tokens: int | None = None
    #: the pod failed mid-answer (the client's connection was cut)
    broken: bool = False


class _TokenCounter:
    """Completion tokens of an answer as it streams by: streamed events (``data:`` lines
    other than ``[DONE]``), or ``usage.completion_tokens`` of a JSON answer."""

    def __init__(self, content_type: str) -> None:
        self.streamed = "text/event-stream" in content_type
        self.json = "json" in content_type
        self._tail = b""
        self._events = 0
        self._body: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        if self.streamed:
            # keep 5 bytes so a marker split across chunks is counted once
            buf = self._tail + chunk
            self._events += buf.count(b"data:") - self._tail.count(b"data:")
            self._events -= buf.count(b"[DONE]") - self._tail.count(b"[DONE]")
            self._tail = buf[-5:]
        elif self.json and self._size <= _MAX_PARSED_BODY:
            self._body.append(chunk)
            self._size += len(chunk)

    def tokens(self) -> int | None:
        if self.streamed:
            return max(self._events, 0)
        if not self.json or self._size > _MAX_PARSED_BODY:
            return None
        try:
            usage = json.loads(b"".join(self._body)).get("usage") or {}
            count = usage.get("completion_tokens")
        except (ValueError, AttributeError):
            return None
        return count if isinstance(count, int) and count >= 0 else None


class Forwarder:
    """The upstream side: one client session to the pods, the retry across pods, streaming."""

    def __init__(
        self,
        catalog: Catalog,
        traffic: Traffic,
        metrics: GatewayMetrics,
        settings: GatewaySettings,
        rng: Callable[[], float],
        clock: Callable[[], float],
    ) -> None:
        self.catalog = catalog
        self.traffic = traffic
        self.metrics = metrics
        self.settings = settings
        self._rng = rng
        self._clock = clock
        self._turn = 0
        self._endpoint_load: Counter[Endpoint] = Counter()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0, keepalive_timeout=self.settings.upstream_keepalive
        )
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(
        self,
        request: web.Request,
        view: LLMView,
        body: bytes,
        arrived: float,
        answered: Answered | None = None,
    ) -> tuple[web.StreamResponse, str]:
        assert self._session is not None, "Gateway.start() was not awaited"
        answered = answered if answered is not None else Answered()
        key = view.key
        tried: set[Endpoint] = set()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        peer = request.remote or ""
        prior = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
        route = pick_release(view.routes, self.catalog.ready_counts(view), self._rng())
        if route is None:
            raise Problem(503, f"{view.name}: no ready replica", "model_not_ready", retry_after=1)
        answered.release = route.version
        endpoints = self.catalog.endpoints(view.namespace, route.service)
        self.traffic.begin(key)
        self.metrics.inflight.labels(key).inc()
        attempt = 0
        try:
            while True:
                self._turn += 1
                endpoint = pick_endpoint(
                    endpoints, self._endpoint_load, frozenset(tried), self._turn
                )
                if endpoint is None:
                    raise Problem(
                        502, f"{view.name}: every replica failed", "upstream_failed", retry_after=1
                    )
                attempt += 1
                tried.add(endpoint)
                others = len([e for e in endpoints if e not in tried])
                self._endpoint_load[endpoint] += 1
                try:
                    outcome = await self._attempt(
                        request,
                        endpoint,
                        body,
                        headers,
                        view,
                        route.version,
                        arrived,
                        answered,
                        attempt=attempt,
                        others=others,
                    )
                finally:
                    self._endpoint_load[endpoint] -= 1
                    if self._endpoint_load[endpoint] <= 0:
                        del self._endpoint_load[endpoint]
                if isinstance(outcome, Failure):
                    self.metrics.retries.labels(key, outcome.value).inc()
                    log.info("%s: %s from %s; retrying on another pod", key, outcome, endpoint)
                    continue
                return outcome, route.version
        finally:
            self.traffic.end(key)
            self.metrics.inflight.labels(key).dec()

    async def _attempt(
        self,
        request: web.Request,
        endpoint: Endpoint,
        body: bytes,
        headers: dict[str, str],
        view: LLMView,
        release: str,
        arrived: float,
        answered: Answered,
        *,
        attempt: int,
        others: int,
    ) -> web.StreamResponse | Failure:
        """One try against one pod: the response sent to the client, or a retryable failure
        (nothing was sent to the client then)."""
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout)
        try:
            upstream = await self._session.request(
                request.method,
                endpoint.url + request.path_qs,
                data=body,
                headers=headers,
                timeout=timeout,
            )
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            if should_retry(Failure.CONNECT, attempt, False, others):
                return Failure.CONNECT
            raise Problem(
                502,
                f"{view.name}: replica unreachable ({type(exc).__name__})",
                "upstream_failed",
                retry_after=1,
                kind="server_error",
            ) from None
        done = False
        try:
            if upstream.status == 503 and should_retry(Failure.UNAVAILABLE, attempt, False, others):
                await upstream.read()
                done = True
                return Failure.UNAVAILABLE
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    response.headers.add(name, value)
            response.headers[RELEASE_HEADER] = release
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            first = True
            counter = _TokenCounter(upstream.headers.get("Content-Type", ""))
            try:
                async for chunk in upstream.content.iter_any():
                    if first:
                        answered.ttfb = self._clock() - arrived
                        self.metrics.ttfb.labels(view.key, release).observe(answered.ttfb)
                        first = False
                    counter.feed(chunk)
                    await response.write(chunk)  # waits for the client: backpressure
            except aiohttp.ClientError as exc:
                # The pod died mid-answer: the client must see a broken answer, not a
                # short one that looks complete, so its connection is cut, not ended.
                log.warning("%s: %s failed mid-answer: %s", view.key, endpoint, exc)
                answered.broken = True
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError from exc
            if first:
                answered.ttfb = self._clock() - arrived
                self.metrics.ttfb.labels(view.key, release).observe(answered.ttfb)
            answered.tokens = counter.tokens() if upstream.status < 400 else None
            await response.write_eof()
            done = True
            return response
        finally:
            if done:
                upstream.release()  # fully read: the connection goes back to the pool
            else:
                # cancelled (client gone) or failed mid-stream: close the pod's connection,
                # so the pod sees the disconnect and stops generating
                upstream.close()
