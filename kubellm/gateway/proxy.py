"""The gateway's HTTP side: an OpenAI-aware reverse proxy in front of every LLM's releases.

Client port (`build_app`): ``POST /v1/completions`` and ``/v1/chat/completions`` are routed by
the body's ``model`` (an LLM's name, or ``namespace/name``) to a release drawn by the
weights in the LLM's status, then to the ready pod of that release with the fewest requests
in flight from this gateway. ``GET /v1/models`` lists every LLM the gateway fronts.

Admin port (`build_admin_app`, for the operator and Prometheus, not for clients):
``/demand`` (long poll, see `demand`), ``/traffic`` (each release's answers since an
instant, for canary steps, see `windows`), ``/metrics``, ``/healthz``, ``/readyz``.

The server runs with handler cancellation on, so a client that disconnects cancels its
handler and, through it, the pod's connection. An LLM with no ready pod (scaled to zero)
holds the request until one is ready or ``hold_timeout`` passes (`holding`); the answer is
forwarded and streamed, with one retry on another pod, by `forwarding`. This module parses
the request, resolves its model, and turns every refusal (`problems.Problem`) into an answer.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubellm.api import untrusted
from kubellm.gateway.catalog import Catalog, LLMView
from kubellm.gateway.demand import to_json
from kubellm.gateway.forwarding import Answered, Forwarder
from kubellm.gateway.holding import Holding
from kubellm.gateway.metrics import GatewayMetrics
from kubellm.gateway.problems import GatewaySettings, Problem
from kubellm.gateway.traffic import Traffic
from kubellm.gateway.windows import TrafficWindows
from kubellm.gateway.windows import to_json as traffic_json

__all__ = ["Gateway", "GatewaySettings", "build_admin_app", "build_app", "serve"]

FORWARDED_PATHS = ("/v1/completions", "/v1/chat/completions")


class Gateway:
    """Routing, holding and forwarding; one per process, bound to one event loop."""

    def __init__(
        self,
        catalog: Catalog,
        settings: GatewaySettings | None = None,
        *,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.catalog = catalog
        self.settings = settings or GatewaySettings()
        self.metrics = GatewayMetrics()
        self.windows = TrafficWindows(wall=wall)
        self.traffic = Traffic(self.settings.max_held, clock=clock)
        self._clock = clock
        self._holding = Holding(catalog, self.traffic, self.metrics, self.settings, clock)
        self._forwarder = Forwarder(
            catalog, self.traffic, self.metrics, self.settings, rng=rng, clock=clock
        )
        catalog.on_change(self._holding.on_catalog_change)

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        await self._forwarder.start()

    async def close(self) -> None:
        await self._holding.close()
        await self._forwarder.close()

    # ---------------------------------------------------------------- requests
    def _resolve(self, payload: Any) -> LLMView:
        model = payload.get("model") if isinstance(payload, dict) else None
        if not isinstance(model, str) or not model:
            raise Problem(400, "the request needs a model (an LLM's name)", "model_required")
        found = self.catalog.resolve(model)
        if found is None:
            raise Problem(404, f"the model {model!r} does not exist", "model_not_found")
        if isinstance(found, list):
            names = ", ".join(v.key for v in found)
            raise Problem(
                400,
                f"the model {model!r} exists in several namespaces: use one of {names}",
                "model_ambiguous",
            )
        if not found.routes:
            raise Problem(
                503,
                f"{found.name}: no release serves this model yet",
                "model_not_ready",
                retry_after=self.settings.retry_after,
                kind="server_error",
            )
        return found

    async def handle(self, request: web.Request) -> web.StreamResponse:
        arrived = self._clock()
        key, code = "", 500
        answered = Answered()
        try:
            body = await request.read()
            try:
                payload = untrusted.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise Problem(400, "the body must be a JSON object", "invalid_json") from None
            view = self._resolve(payload)
            key = view.key
            if payload.get("model") != view.name:  # namespace/name: the pod knows its name
                payload["model"] = view.name
                body = json.dumps(payload).encode()
            view = await self._holding.wait_until_servable(view, arrived)
            response, _ = await self._forwarder.forward(request, view, body, arrived, answered)
            code = response.status
            return response
        except Problem as problem:
            code = problem.status
            return problem.response()
        except asyncio.CancelledError:
            # the pod failed mid-answer (502), or the client went away (nginx's 499)
            code = 502 if answered.broken else 499
            raise
        finally:
            if key:
                release = answered.release
                took = self._clock() - arrived
                self.metrics.requests.labels(key, release, str(code)).inc()
                self.metrics.latency.labels(key, release).observe(took)
                if release and code != 499:
                    self.windows.record(
                        key,
                        release,
                        error=code >= 500,
                        seconds=took,
                        ttfb=answered.ttfb,
                        tokens=answered.tokens,
                    )

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

    async def traffic_since(self, request: web.Request) -> web.Response:
        """``?llm=NAMESPACE/NAME&since=EPOCH``: each release's answers since ``since``."""
        llm = request.query.get("llm", "")
        try:
            since = float(request.query["since"])
        except (KeyError, ValueError):
            return web.json_response({"error": "since: epoch seconds"}, status=400)
        if llm.count("/") != 1:
            return web.json_response({"error": "llm: NAMESPACE/NAME"}, status=400)
        releases = self.windows.since(llm, since)
        return web.json_response(traffic_json(self.traffic.instance, self.windows.now(), releases))

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
        return Problem(404, f"the model {wanted!r} does not exist", "model_not_found").response()

    async def not_found(request: web.Request) -> web.Response:
        return Problem(404, f"no route {request.method} {request.path}", "unknown_route").response()

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
    app.router.add_get("/traffic", gateway.traffic_since)
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
