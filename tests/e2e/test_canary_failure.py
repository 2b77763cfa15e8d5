"""A failing canary, end to end: a real `kubellm gateway` process in front of the releases,
the real operator judging the first step on the gateway's figures, the tiny model trained
once (version 2 is registered from outside with its weights), and localkube's
`http-errors` pod fault breaking the candidate (on either cluster: the same kubelet runs
the pods of both).

Version 1 is promoted as usual; version 2 is rolled out as a Canary while clients keep
calling through the gateway. Once version 2 passed its synthetic load test (the first gate,
which would refuse a release failing 30% of its requests before any live traffic) and took
its first step's 10%, its pods start failing 30% of their requests. The step fails at its
next look: version 2 is refused with the error rate as the reason, all traffic returns to
production within one analysis interval, production was never touched, and the only errors
the clients saw were the candidate's, on its 10% share.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from kubellm.operator.naming import LABEL_LLM, LABEL_VERSION

from .conftest import Gateway, System, e2e_manifest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NAME = "canary-fail-bot"
ROLLOUT_TIMEOUT = 300.0
INTERVAL = 2.0  # the canary's analysis interval (seconds)
STEPS = [{"weight": 10, "pause": "60s"}, {"weight": 50, "pause": "15s"}]
#: what the gateway, its watch and the operator's reconcile may add to one interval
SLACK = 3.0


@dataclass(frozen=True)
class Call:
    at: float
    status: int
    fault: str | None  # localkube's header on an answer the fault gave instead of the app


def _production(system: System) -> str | None:
    return (system.status(NAME).get("production") or {}).get("version")


def _apply(system: System, obj: dict[str, Any]) -> None:
    system.kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def _pods(system: System, version: str) -> list[tuple[str, int]]:
    """(name, restarts) of a release's pods."""
    out = system.kubectl(
        "get", "pods", "-l", f"{LABEL_LLM}={NAME},{LABEL_VERSION}={version}", "-o", "json"
    )
    return sorted(
        (p["metadata"]["name"], sum(c["restartCount"] for c in p["status"]["containerStatuses"]))
        for p in json.loads(out)["items"]
    )


def _routes(system: System) -> list[dict[str, Any]]:
    return list((system.status(NAME).get("serving") or {}).get("routes") or [])


def _condition(system: System, ctype: str) -> dict[str, Any]:
    conditions = system.status(NAME).get("conditions") or []
    return next((c for c in conditions if c["type"] == ctype), {})


def test_candidate_failing_30_percent_stops_at_its_first_step_with_production_untouched(
    system: System,
    gateway: Gateway,
) -> None:
    _apply(system, e2e_manifest(NAME))
    system.wait_for(
        "version 1 in production",
        lambda: system.status(NAME).get("phase") == "Ready" and _production(system) == "1",
        ROLLOUT_TIMEOUT,
    )
    production_pods = _pods(system, "1")
    assert production_pods and all(restarts == 0 for _, restarts in production_pods)

    calls: list[Call] = []
    stop = threading.Event()

    def client_loop(n: int) -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                body = {"model": NAME, "prompt": f"Question {n}: how do I roll back?"}
                started = time.monotonic()
                try:
                    resp = client.post(
                        gateway.url + "/v1/completions", json={**body, "max_tokens": 4}
                    )
                    status = resp.status_code
                    if status == 200 and not resp.json().get("choices"):
                        status = 0  # an empty answer is a failure too
                    calls.append(Call(started, status, resp.headers.get("x-localkube-fault")))
                except httpx.HTTPError:  # every failure a user would see
                    calls.append(Call(started, -1, None))
                time.sleep(0.02)

    threads = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(3)]
    for t in threads:
        t.start()
    try:
        manifest = e2e_manifest(NAME)
        manifest["spec"]["rollout"]["strategy"] = "Canary"
        manifest["spec"]["rollout"]["canary"] = {
            "steps": STEPS,
            "minRequests": 3,
            "interval": f"{INTERVAL:g}s",
        }
        _apply(system, manifest)
        # version 2, registered from outside with version 1's weights: no second training
        system.set_alias(NAME, "candidate", system.register_copy(NAME, "1"))
        system.wait_for(
            "version 2 at its first step",
            lambda: system.status(NAME).get("stage") == "Canary 10%",
            ROLLOUT_TIMEOUT,
            0.2,
        )
        step_started = time.monotonic()
        system.add_pod_fault(
            kind="http-errors", labels={LABEL_LLM: NAME, LABEL_VERSION: "2"}, rate=0.3
        )
        system.wait_for(
            "all traffic back on production",
            lambda: _routes(system) == [{"version": "1", "service": NAME, "weight": 100}],
            60,
            0.2,
        )
        back = time.monotonic()
        time.sleep(3 * INTERVAL)  # clients keep calling: production answers all of it
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        system.clear_pod_faults()

    # refused at its first step, with the error rate as the reason
    status = system.status(NAME)
    assert _production(system) == "1" and not status.get("stage"), status.get("stage")
    passed = _condition(system, "LoadTestPassed")
    assert (passed["status"], passed["reason"]) == ("False", "CanaryFailed"), passed
    assert "error rate" in passed["message"] and "version 2" in passed["message"], passed
    release = status["history"][0]
    assert (release["version"], release["verdict"]) == ("2", "refused")
    (step,) = release["canary"]
    assert (step["step"], step["weight"], step["outcome"]) == (1, 10, "Failed"), step
    assert step["errorRate"] > 0.01 and "error rate" in step["reasons"][0], step
    assert not step.get("productionErrorRate"), step
    events = system.kubectl(
        "get", "events", "--field-selector", f"involvedObject.name={NAME},reason=Refused",
        "-o", "json",
    )  # fmt: skip
    messages = [e["message"] for e in json.loads(events)["items"]]
    assert any("version 2 failed its canary" in m for m in messages), messages

    # production untouched: the same pods, never restarted
    assert _pods(system, "1") == production_pods

    # the clients' errors: the candidate's (the fault's answers), on its share, then none
    failed = [c for c in calls if c.status != 200]
    assert failed, "the fault never reached a client"
    assert all((c.status, c.fault) == (500, "http-errors") for c in failed), failed[:5]
    during = [c for c in calls if step_started <= c.at <= back]
    share = len(failed) / len(during)
    assert share <= STEPS[0]["weight"] / 100, (len(failed), len(during))
    stopped_within = max(c.at for c in failed) - min(c.at for c in failed)
    assert stopped_within <= INTERVAL + SLACK, stopped_within
    after = [c for c in calls if c.at > back + INTERVAL]
    assert len(after) >= 10 and all(c.status == 200 for c in after), after[-5:]
    metrics = httpx.get(gateway.admin_url + "/metrics", timeout=10).text
    assert f'code="500",llm="default/{NAME}",release="2"' in metrics
    assert f'code="500",llm="default/{NAME}",release="1"' not in metrics
    print(
        f"\ncanary failure: {len(calls)} requests, {len(failed)} failed ({share:.1%} of the "
        f"{len(during)} during the step), the first to the last error {stopped_within:.1f}s; "
        f"step: {step['requests']} candidate requests, error rate {step['errorRate']:.0%}"
    )
