"""Issue 12 item 6: a dead or silent tracking server never hangs the operator.

MLflow's client retries 7 times with backoff and waits 120 s per attempt by default: one
`resolve_alias` against a refused port took 248 s while holding a worker. With the
operator's HTTP policy every call ends within a known bound, a per-server circuit breaker
stops calling a server that keeps failing, and the webhook registration at start-up runs
in a thread, so kopf's event loop (and its liveness endpoint) never waits on the registry.
"""

from __future__ import annotations

import asyncio
import logging
import time

import kopf
import pytest

from kubellm.operator.config import OperatorConfig
from kubellm.operator.handlers import build_registry
from kubellm.operator.reconciling import Reconciler
from kubellm.registry import CircuitBreaker, CircuitOpen, HttpPolicy, Registry, RegistryUnavailable
from tests.unit.operator.memory_kube import MemoryKube

from .listeners import blackhole, refused_port


def _timed_failure(registry: Registry) -> tuple[float, BaseException]:
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable) as info:
        registry.resolve_alias("bot", "production")
    return time.monotonic() - started, info.value


def test_refused_port_fails_within_a_few_seconds(bounded_http: HttpPolicy) -> None:
    elapsed, error = _timed_failure(Registry(f"http://127.0.0.1:{refused_port()}"))
    assert elapsed < 3.0, f"took {elapsed:.1f} s"
    assert "registry unreachable" in str(error)


def test_blackholed_server_fails_within_the_policy_bound(bounded_http: HttpPolicy) -> None:
    with blackhole() as uri:
        elapsed, error = _timed_failure(Registry(uri))
    assert bounded_http.timeout_s <= elapsed <= bounded_http.worst_case_s + 1.5, elapsed
    assert "registry unreachable" in str(error)


def test_breaker_stops_calling_a_silent_server(bounded_http: HttpPolicy) -> None:
    with blackhole() as uri:
        registry = Registry(uri, breaker=CircuitBreaker(threshold=1, cooldown=60))
        _timed_failure(registry)
        started = time.monotonic()
        with pytest.raises(CircuitOpen, match="not calling it again"):
            registry.resolve_alias("bot", "production")
        assert time.monotonic() - started < 0.1


async def test_webhook_registration_at_startup_never_blocks_the_event_loop(
    bounded_http: HttpPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    with blackhole() as uri:
        config = OperatorConfig(
            tracking_uri=uri,
            webhook_host="127.0.0.1",
            webhook_port=0,
            webhook_secret="s",
            webhook_public_url="http://127.0.0.1:1/webhooks/mlflow",
            registry_timeout=bounded_http.timeout_s,
            registry_retries=bounded_http.max_retries,
        )
        reconciler = Reconciler(MemoryKube(), config)
        handlers = {
            h.fn.__name__: h.fn
            for h in build_registry(reconciler, config)._activities.get_all_handlers()
        }
        caplog.set_level(logging.WARNING, logger="kubellm.operator.handlers")

        started = time.monotonic()
        await handlers["startup"](
            settings=kopf.OperatorSettings(), llm_inboxes={}, llms_by_model={}
        )
        assert time.monotonic() - started < 1.0  # kopf goes on to watch and serve liveness

        # The loop keeps its pace while the registration waits on the silent server.
        worst_lag = 0.0
        deadline = time.monotonic() + 2 * bounded_http.worst_case_s + 6
        while time.monotonic() < deadline and "could not register" not in caplog.text:
            before = time.monotonic()
            await asyncio.sleep(0.05)
            worst_lag = max(worst_lag, time.monotonic() - before - 0.05)
        await handlers["cleanup"]()

    assert "could not register the MLflow webhook" in caplog.text  # a warning, no crash
    assert worst_lag < 0.5, f"event loop stalled for {worst_lag:.2f} s"
