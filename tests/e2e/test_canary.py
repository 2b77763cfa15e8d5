"""A canary through the gateway, end to end: a real `kubellm gateway` process in front of
the releases, the real operator reading each step's live figures from it, the tiny model
trained once.

Version 1 is promoted as usual (BlueGreen); the spec then asks for a Canary, and version 2
(registered from outside with version 1's weights, as a pipeline would), once its load
test passed, takes 10% then 50% of the live traffic, each step
judged on the gateway's figures, then all of it, while clients keep calling through the
gateway: no request fails, `kubectl get llm` shows each step, and the release's history
keeps each step's figures.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from .conftest import Gateway, System, e2e_manifest, kubectl_table

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NAME = "canary-bot"
ROLLOUT_TIMEOUT = 300.0
STEPS = [{"weight": 10, "pause": "20s"}, {"weight": 50, "pause": "15s"}]


def _production(system: System) -> str | None:
    return (system.status(NAME).get("production") or {}).get("version")


def _ready_with(system: System, version: str) -> bool:
    status = system.status(NAME)
    return status.get("phase") == "Ready" and _production(system) == version


def _apply(system: System, obj: dict[str, Any]) -> None:
    system.kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def test_canary_walks_10_then_50_then_100_percent_without_a_failed_request(
    system: System,
    gateway: Gateway,
) -> None:
    _apply(system, e2e_manifest(NAME))
    system.wait_for("version 1 in production", lambda: _ready_with(system, "1"), ROLLOUT_TIMEOUT)

    failures: list[str] = []
    answered: dict[str, int] = {}
    stop = threading.Event()

    def client_loop(n: int) -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                body = {"model": NAME, "prompt": f"Question {n}: how do I roll back?"}
                try:
                    resp = client.post(
                        gateway.url + "/v1/completions", json={**body, "max_tokens": 4}
                    )
                    if resp.status_code != 200 or not resp.json().get("choices"):
                        failures.append(f"{resp.status_code}: {resp.text[:200]}")
                    else:
                        answered[str(n)] = answered.get(str(n), 0) + 1
                except Exception as exc:  # every failure a user would see
                    failures.append(repr(exc))
                time.sleep(0.02)

    stages: list[str] = []

    def watch_stages() -> None:
        while not stop.is_set():
            try:
                columns = kubectl_table(system.kubectl("get", "llm", NAME))
            except Exception:  # a failed kubectl call is retried
                continue
            stage = columns.get("STAGE", "")
            if stage and (not stages or stages[-1] != stage):
                stages.append(stage)
            time.sleep(0.5)

    threads = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(3)]
    threads.append(threading.Thread(target=watch_stages, daemon=True))
    for t in threads:
        t.start()
    try:
        manifest = e2e_manifest(NAME)
        manifest["spec"]["rollout"]["strategy"] = "Canary"
        manifest["spec"]["rollout"]["canary"] = {
            "steps": STEPS,
            "minRequests": 3,
            "interval": "2s",
        }
        _apply(system, manifest)
        # version 2, registered from outside with version 1's weights: no second training
        system.set_alias(NAME, "candidate", system.register_copy(NAME, "1"))
        system.wait_for(
            "version 2 in production", lambda: _ready_with(system, "2"), ROLLOUT_TIMEOUT
        )
        system.wait_for(
            "version 1 retired", lambda: system.names("deployments") == [f"{NAME}-v2"], 60
        )
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join(60)

    assert failures == [], failures[:5]
    assert sum(answered.values()) > 30
    assert stages == ["Canary 10%", "Canary 50%"], stages
    status = system.status(NAME)
    assert status["serving"]["routes"] == [{"version": "2", "service": NAME, "weight": 100}]
    release = status["history"][0]
    assert (release["version"], release["verdict"]) == ("2", "promoted")
    steps = release["canary"]
    assert [(s["step"], s["weight"], s["outcome"]) for s in steps] == [
        (1, 10, "Passed"),
        (2, 50, "Passed"),
    ]
    for step in steps:
        assert step["requests"] >= 3 and step["productionRequests"] >= 1, step
        assert step.get("errorRate", 0) == 0 and step["p95Ms"] > 0, step
    # the first step's share: about 10% of what both releases answered in its window
    first = steps[0]
    share = first["requests"] / (first["requests"] + first["productionRequests"])
    assert 0.02 <= share <= 0.3, first
    metrics = httpx.get(gateway.admin_url + "/metrics", timeout=10).text
    assert f'code="200",llm="default/{NAME}",release="2"' in metrics
    print(
        f"\ncanary: {sum(answered.values())} requests answered through the gateway, "
        f"steps {[(s['weight'], s['requests'], s['productionRequests']) for s in steps]}"
    )
