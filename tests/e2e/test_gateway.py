"""Scale to zero through the gateway, end to end: a real `kubellm gateway` process in front
of the releases, the real operator reading its demand, the tiny model trained and promoted.

An LLM with `replicas.min: 0` serves through the gateway, scales to zero after idling for
`scaleToZeroAfter`, and 16 concurrent requests sent while it is at zero are all answered;
the cold start the gateway measured shows in the LLM's status and in `kubectl get llm`.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from .conftest import Gateway, System, e2e_manifest, kubectl_table

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NAME = "gw-bot"
IDLE = "15s"


def _complete(gw: Gateway, i: int = 0) -> tuple[int, Any]:
    body = {"model": NAME, "prompt": f"Question {i}: how do I deploy?", "max_tokens": 8}
    resp = httpx.post(gw.url + "/v1/completions", json=body, timeout=300)
    return resp.status_code, resp.json()


def _serving(system: System) -> dict[str, Any]:
    return dict(system.status(NAME).get("serving") or {})


def _desired_replicas(system: System) -> int:
    out = system.kubectl("get", "deployment", f"{NAME}-v1", "-o", "jsonpath={.spec.replicas}")
    return int(out or 0)


def _has_hpa(system: System) -> bool:
    out = system.kubectl("get", "hpa", "-o", "jsonpath={.items[*].metadata.name}")
    return NAME in out.split()


def _ready_condition(system: System) -> dict[str, Any]:
    return next(c for c in system.status(NAME)["conditions"] if c["type"] == "Ready")


def test_llm_scales_to_zero_and_back_through_the_gateway(system: System, gateway: Gateway) -> None:
    manifest = e2e_manifest(NAME)
    manifest["spec"]["serving"]["replicas"] = {"min": 0, "max": 2}
    manifest["spec"]["serving"]["scaleToZeroAfter"] = IDLE
    system.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    system.wait_for(
        "version 1 in production",
        lambda: (
            (system.status(NAME).get("production") or {}).get("version") == "1"
            and system.status(NAME).get("phase") == "Ready"
        ),
        300,
    )
    # the gateway lists it and routes to the production Service
    models = httpx.get(gateway.url + "/v1/models", timeout=10).json()["data"]
    assert NAME in [m["id"] for m in models]
    assert _serving(system)["routes"] == [{"version": "1", "service": NAME, "weight": 100}]

    status, body = _complete(gateway)
    assert status == 200 and body["choices"], body
    answered = time.monotonic()

    # idle for scaleToZeroAfter: the operator scales the release to zero and drops the HPA
    system.wait_for(
        "the release at zero",
        lambda: (
            _serving(system).get("scaledToZero")
            and _serving(system).get("replicas") == 0
            and _desired_replicas(system) == 0
        ),
        180,
    )
    assert time.monotonic() - answered >= 15 - 1  # not before the idle time
    assert not _has_hpa(system)
    ready = _ready_condition(system)
    assert (ready["status"], ready["reason"]) == ("True", "ScaledToZero")
    before = _serving(system).get("lastColdStartAt")

    # 16 concurrent requests at zero: held by the gateway, all answered
    sent = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: _complete(gateway, i), range(16)))
    elapsed = time.monotonic() - sent
    assert [s for s, _ in results] == [200] * 16, results
    assert all(b["choices"] for _, b in results)

    # the cold start, as the gateway measured it, is in the status and kubectl get llm
    system.wait_for(
        "the cold start in status",
        lambda: (
            _serving(system).get("lastColdStartAt") not in (None, before)
            and _serving(system).get("replicas", 0) >= 1
        ),
        60,
    )
    serving = _serving(system)
    cold = serving["lastColdStartSeconds"]
    assert 0 < cold <= elapsed, (cold, elapsed)
    assert serving["scaledToZero"] is False
    assert _has_hpa(system)
    columns = kubectl_table(system.kubectl("get", "llm", NAME, "-o", "wide"))
    assert int(columns["REPLICAS"]) >= 1
    assert float(columns["COLD-START-S"]) == pytest.approx(cold, abs=0.01)
    metrics = httpx.get(gateway.admin_url + "/metrics", timeout=10).text
    assert f'kubellm_gateway_cold_starts_total{{llm="default/{NAME}"}}' in metrics
    print(
        f"\ncold start through the gateway: {cold:.2f} s (16 requests answered in {elapsed:.2f} s)"
    )
