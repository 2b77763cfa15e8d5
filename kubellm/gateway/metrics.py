"""The gateway's Prometheus metrics, on a registry of its own (one per app, so tests can
run several gateways in one process).

Labels: ``llm`` is ``namespace/name``; ``release`` is the registry version drawn for the
request, also when its pods failed it ("" when none was drawn: held until timeout, unknown
model, no release). A pod that fails mid-answer counts as code 502, a client that went
away as 499. Canary steps are judged on `windows`, not on these cumulative series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["GatewayMetrics"]

# Latency buckets from a cached short answer to a long generation.
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_COLD = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120, 300)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "kubellm_gateway_requests",
            "Requests answered, by LLM, release and HTTP status code.",
            ["llm", "release", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "kubellm_gateway_request_seconds",
            "Time from the request's arrival to the last byte of the answer.",
            ["llm", "release"],
            buckets=_LATENCY,
            registry=r,
        )
        self.ttfb = Histogram(
            "kubellm_gateway_time_to_first_byte_seconds",
            "Time from the request's arrival to the first byte of the answer (holding included).",
            ["llm", "release"],
            buckets=_LATENCY,
            registry=r,
        )
        self.inflight = Gauge(
            "kubellm_gateway_inflight_requests",
            "Requests being forwarded now.",
            ["llm"],
            registry=r,
        )
        self.held = Gauge(
            "kubellm_gateway_held_requests",
            "Requests waiting for a ready endpoint (an LLM at zero replicas).",
            ["llm"],
            registry=r,
        )
        self.hold_timeouts = Counter(
            "kubellm_gateway_hold_timeouts",
            "Held requests answered 503 because no endpoint turned ready in time.",
            ["llm"],
            registry=r,
        )
        self.retries = Counter(
            "kubellm_gateway_retries",
            "Attempts retried on another endpoint, by the first attempt's failure.",
            ["llm", "reason"],
            registry=r,
        )
        self.cold_starts = Counter(
            "kubellm_gateway_cold_starts",
            "Hold episodes that ended with an endpoint turning ready.",
            ["llm"],
            registry=r,
        )
        self.cold_start_seconds = Histogram(
            "kubellm_gateway_cold_start_seconds",
            "From the first held request to the release of the held requests.",
            ["llm"],
            buckets=_COLD,
            registry=r,
        )
