"""The Prometheus series of a serving pod, and the middleware that counts requests.

The load-test gate reads latency and token rates from here, and the HPA scales on
``kubellm_inflight_requests``; both must count every ``/v1`` request, refused ones
included, so the counting happens in an ASGI middleware around the whole app rather
than in the routes.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kubellm.serving.lifecycle import ServerState

__all__ = ["Metrics", "MetricsMiddleware"]

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80)
TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class Metrics:
    """The Prometheus series the load-test gate and the HPA read."""

    def __init__(self, state: ServerState) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "kubellm_requests",
            "Requests by route and HTTP status.",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "kubellm_request_duration_seconds",
            "End-to-end request latency, to the last byte.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "kubellm_time_to_first_token_seconds",
            "From request arrival to the first generated token.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "kubellm_inter_token_latency_seconds",
            "Time between consecutive generated tokens of one request.",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "kubellm_prompt_tokens", "Prompt tokens of admitted requests.", registry=r
        )
        self.generation_tokens = Counter(
            "kubellm_generation_tokens", "Generated tokens.", registry=r
        )
        running = Gauge("kubellm_running_batch_size", "Sequences in the running batch.", registry=r)
        running.set_function(lambda: float(state.engine.running if state.engine else 0))
        queue = Gauge("kubellm_queue_depth", "Requests waiting to join the batch.", registry=r)
        queue.set_function(lambda: float(state.engine.waiting if state.engine else 0))
        inflight = Gauge(
            "kubellm_inflight_requests",
            "Generation requests being served (queued or running); the HPA's metric.",
            registry=r,
        )
        inflight.set_function(lambda: float(state.inflight))
        ready = Gauge("kubellm_model_ready", "1 when the model is loaded and warm.", registry=r)
        ready.set_function(lambda: 1.0 if state.ready else 0.0)


class MetricsMiddleware:
    """Counts /v1 requests by status, times them to the last byte, tracks in-flight ones."""

    def __init__(self, app: Any, state: ServerState, metrics: Metrics) -> None:
        self.app, self.state, self.metrics = app, state, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/v1/") or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        status = {"code": 500}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.monotonic()
        self.state.inflight += 1
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.state.inflight -= 1
            self.metrics.requests.labels(path, str(status["code"])).inc()
            self.metrics.latency.labels(path).observe(time.monotonic() - started)
