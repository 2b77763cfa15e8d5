"""The gateway's HTTP side: an OpenAI-aware reverse proxy in front of every LLM's releases.

Client port (`build_app`): ``POST /v1/completions`` and ``/v1/chat/completions`` are routed by
the body's ``model`` (an LLM's name, or ``namespace/name``) to a release drawn by the
weights in the LLM's status, then to the ready pod of that release with the fewest requests
in flight from this gateway. ``GET /v1/models`` lists every LLM the gateway fronts.

Admin port (`build_admin_app`, for the operator and Prometheus, not for clients):
``/demand`` (long poll, see `demand`), ``/metrics``, ``/healthz``, ``/readyz``.

The answer is streamed through as it arrives: each chunk is written to the client before
the next is read from the pod, so a slow reader slows the pod's socket (TCP backpressure)
instead of filling the gateway's memory. The server runs with handler cancellation on: a
client that disconnects cancels its handler, which closes the connection to the pod, and
`kubellm serve` drops the sequence from its batch. A connect failure or a 503 (a pod
starting or draining) is retried once on another pod, only while nothing has been sent to
the client. An LLM with no ready pod (scaled to zero) holds the request until one is ready
or ``hold_timeout`` passes (503 with Retry-After: never a request left without an answer).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubellm.gateway.catalog import Catalog, LLMView
from kubellm.gateway.demand import to_json
from kubellm.gateway.metrics import GatewayMetrics
from kubellm.gateway.routing import (
    Endpoint,
    Failure,
    pick_endpoint,
    pick_release,
    retry_after_seconds,
    should_retry,
)
from kubellm.gateway.traffic import Traffic

__all__ = ["Gateway", "GatewaySettings", "build_admin_app", "build_app", "serve"]

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
FORWARDED_PATHS = ("/v1/completions", "/v1/chat/completions")


@dataclass(frozen=True)
class GatewaySettings:
    #: longest wait for a ready endpoint (scale from zero) before answering 503
    hold_timeout: float = 120.0
    #: requests held per LLM at most; more are answered 503 at once
    max_held: int = 256
    #: seconds to open a connection to a pod before trying another
    connect_timeout: float = 3.0
    #: largest request body accepted
    max_body_bytes: int = 16 * 1024 * 1024
    #: idle keep-alive connections to pods are closed after this (below uvicorn's 5 s, so
    #: the gateway never reuses a connection the pod is closing)
    upstream_keepalive: float = 3.0
    #: Retry-After of a 503 for an LLM with no release yet, or a full hold queue
    retry_after: int = 5


class _Problem(Exception):
    """An answer the gateway gives itself (OpenAI error body)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        *,
        retry_after: int | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.retry_after, self.kind = retry_after, kind

    def response(self) -> web.Response:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
        body = {"error": {"message": self.message, "type": self.kind, "code": self.code}}
        return web.json_response(body, status=self.status, headers=headers)


class Gateway:
    """Routing, holding and forwarding; one per process, bound to one event loop."""

    def __init__(
        self,
        catalog: Catalog,
        settings: GatewaySettings | None = None,
        *,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self.settings = settings or GatewaySettings()
        self.metrics = GatewayMetrics()
        self.traffic = Traffic(self.settings.max_held, clock=clock)
        self._rng = rng
        self._clock = clock
        self._turn = 0
        self._endpoint_load: Counter[Endpoint] = Counter()
        self._session: aiohttp.ClientSession | None = None
        catalog.on_change(self._on_catalog_change)

    # ---------------------------------------------------------------- lifecycle
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

    # ---------------------------------------------------------------- holding
    def _servable(self, view: LLMView) -> bool:
        ready = self.catalog.ready_counts(view)
        return any(rt.weight > 0 and ready.get(rt.service, 0) > 0 for rt in view.routes)

    def _on_catalog_change(self) -> None:
        self.traffic.track([v.key for v in self.catalog.all_llms()])
        for key in self.traffic.holding():
            namespace, _, name = key.partition("/")
            view = self.catalog.llms.get((namespace, name))
            if view is None or not self._servable(view):
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

    async def _wait_until_servable(self, view: LLMView, arrived: float) -> LLMView:
        """Hold the request until its LLM has a ready endpoint; the view to route with."""
        key = view.key
        deadline = arrived + self.settings.hold_timeout
        while not self._servable(view):
            fut = self.traffic.hold(key)
            if fut is None:
                raise _Problem(
                    503,
                    f"{view.name}: {self.settings.max_held} requests already wait for a "
                    "replica to start; retry later",
                    "too_many_held_requests",
                    retry_after=self.settings.retry_after,
                    kind="server_error",
                )
            self.metrics.held.labels(key).set(self.traffic.held(key))
            try:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(asyncio.shield(fut), remaining)
            except TimeoutError:
                waited = self._clock() - arrived
                self.metrics.hold_timeouts.labels(key).inc()
                raise _Problem(
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
                raise _Problem(404, f"the model {view.name!r} was deleted", "model_not_found")
            view = fresh
        return view

    # ---------------------------------------------------------------- requests
    def _resolve(self, payload: Any) -> LLMView:
        model = payload.get("model") if isinstance(payload, dict) else None
        if not isinstance(model, str) or not model:
            raise _Problem(400, "the request needs a model (an LLM's name)", "model_required")
        found = self.catalog.resolve(model)
        if found is None:
            raise _Problem(404, f"the model {model!r} does not exist", "model_not_found")
        if isinstance(found, list):
            names = ", ".join(v.key for v in found)
            raise _Problem(
                400,
                f"the model {model!r} exists in several namespaces: use one of {names}",
                "model_ambiguous",
            )
        if not found.routes:
            raise _Problem(
                503,
                f"{found.name}: no release serves this model yet",
                "model_not_ready",
                retry_after=self.settings.retry_after,
                kind="server_error",
            )
        return found

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = self._clock()
        key, release, code = "", "", 500
        try:
            body = await request.read()
            try:
                payload = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise _Problem(400, "the body must be a JSON object", "invalid_json") from None
            view = self._resolve(payload)
            key = view.key
            if payload.get("model") != view.name:  # namespace/name: the pod knows its name
                payload["model"] = view.name
                body = json.dumps(payload).encode()
            view = await self._wait_until_servable(view, arrived)
            response, release = await self._forward(request, view, body, arrived)
            code = response.status
            return response
        except _Problem as problem:
            code = problem.status
            return problem.response()
        except asyncio.CancelledError:
            code = 499  # the client went away (nginx's convention)
            raise
        finally:
            if key:
                self.metrics.requests.labels(key, release, str(code)).inc()
                self.metrics.latency.labels(key, release).observe(self._clock() - arrived)

    async def _forward(
        self, request: web.Request, view: LLMView, body: bytes, arrived: float
    ) -> tuple[web.StreamResponse, str]:
        assert self._session is not None, "Gateway.start() was not awaited"
        key = view.key
        tried: set[Endpoint] = set()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        peer = request.remote or ""
        prior = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
        route = pick_release(view.routes, self.catalog.ready_counts(view), self._rng())
        if route is None:
            raise _Problem(503, f"{view.name}: no ready replica", "model_not_ready", retry_after=1)
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
                    raise _Problem(
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
            raise _Problem(
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
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            first = True
            try:
                async for chunk in upstream.content.iter_any():
                    if first:
                        self.metrics.ttfb.labels(view.key, release).observe(self._clock() - arrived)
                        first = False
                    await response.write(chunk)  # waits for the client: backpressure
            except aiohttp.ClientError as exc:
                # The pod died mid-answer: the client must see a broken answer, not a
                # short one that looks complete, so its connection is cut, not ended.
                log.warning("%s: %s failed mid-answer: %s", view.key, endpoint, exc)
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError from exc
            if first:
                self.metrics.ttfb.labels(view.key, release).observe(self._clock() - arrived)
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

    # ---------------------------------------------------------------- listing
    def model_list(self) -> dict[str, Any]:
        views = self.catalog.all_llms()
        names = [v.name for v in views]
        data = []
        for view in views:
            ready = self.catalog.ready_counts(view)
            data.append(
                {
                    "id": view.name if names.count(view.name) == 1 else view.key,
                    "object": "model",
                    "created": view.created,
                    "owned_by": "kubellm",
                    "kubellm": {
                        "namespace": view.namespace,
                        "releases": [
                            {
                                "version": rt.version,
                                "weight": rt.weight,
                                "readyReplicas": ready.get(rt.service, 0),
                            }
                            for rt in view.routes
                        ],
                    },
                }
            )
        return {"object": "list", "data": data}

    # ---------------------------------------------------------------- admin
    async def demand(self, request: web.Request) -> web.Response:
        try:
            after = int(request.query.get("after", "-1"))
            wait = min(max(float(request.query.get("wait", "0")), 0.0), 60.0)
        except ValueError:
            return web.json_response({"error": "after: integer, wait: seconds"}, status=400)
        if request.query.get("instance", self.traffic.instance) == self.traffic.instance:
            await self.traffic.wait_for_change(after, wait)
        self.traffic.track([v.key for v in self.catalog.all_llms()])
        return web.json_response(to_json(self.traffic.report()))

    @property
    def ready(self) -> bool:
        return {"LLM", "Service", "Pod"} <= self.catalog.synced


def build_app(gateway: Gateway) -> web.Application:
    """The client-facing application."""
    app = web.Application(client_max_size=gateway.settings.max_body_bytes)

    async def models(_: web.Request) -> web.Response:
        return web.json_response(gateway.model_list())

    async def one_model(request: web.Request) -> web.Response:
        wanted = request.match_info["model"]
        for item in gateway.model_list()["data"]:
            if wanted in (item["id"], f"{item['kubellm']['namespace']}/{item['id']}"):
                return web.json_response(item)
        return _Problem(404, f"the model {wanted!r} does not exist", "model_not_found").response()

    async def not_found(request: web.Request) -> web.Response:
        return _Problem(
            404, f"no route {request.method} {request.path}", "unknown_route"
        ).response()

    for path in FORWARDED_PATHS:
        app.router.add_post(path, gateway.handle)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model:.+}", one_model)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def build_admin_app(gateway: Gateway) -> web.Application:
    """Demand, metrics and health: for the operator, Prometheus and the kubelet."""
    app = web.Application()

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_: web.Request) -> web.Response:
        if gateway.ready:
            return web.json_response({"status": "ready"})
        missing = sorted({"LLM", "Service", "Pod"} - gateway.catalog.synced)
        return web.json_response({"status": "syncing", "waitingFor": missing}, status=503)

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(gateway.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/demand", gateway.demand)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start ``app`` on host:port with handler cancellation (client disconnects propagate)."""
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
