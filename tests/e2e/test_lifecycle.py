"""The life of one LLM, end to end, through kubectl and the real operator.

One scenario in order (each test starts from where the previous one left the LLM):
train+gate+promote v1; retrain v2 while a client keeps calling production; refuse v3 on an
impossible SLO; roll out an externally registered version by webhook, then by polling;
refuse a badly signed webhook; kill the operator at every stage and still converge.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient
from openai import OpenAI

from kubellm.operator.webhooks import sign

from .conftest import System, e2e_manifest, operator_calls

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NAME = "support-bot"
ROLLOUT_TIMEOUT = 240.0


def _apply(system: System, obj: dict[str, Any]) -> None:
    system.kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def _production(system: System) -> str | None:
    return (system.status(NAME).get("production") or {}).get("version")


def _ready_with(system: System, version: str) -> bool:
    status = system.status(NAME)
    return (
        status.get("phase") == "Ready"
        and (status.get("production") or {}).get("version") == version
    )


def _complete(address: str, prompt: str = "The operator") -> str:
    client = OpenAI(base_url=f"{address}/v1", api_key="unused", timeout=30)
    return str(client.completions.create(model=NAME, prompt=prompt, max_tokens=8).choices[0].text)


def test_apply_trains_gates_and_promotes_version_1(system: System) -> None:
    _apply(system, e2e_manifest())
    system.wait_for("version 1 in production", lambda: _ready_with(system, "1"), ROLLOUT_TIMEOUT)
    table = system.kubectl("get", "llm", NAME)
    header, row = table.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "PHASE", "STAGE", "PRODUCTION", "CANDIDATE", "P95-MS"]
    assert row.split()[1:3] == ["Ready", "1"]
    status = system.status(NAME)
    assert status["lastP95Ms"] > 0
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "SpecValid": "True",
        "Trained": "True",
        "CandidateReady": "False",
        "LoadTestPassed": "True",
        "ProductionAliasDrift": "False",
        "Ready": "True",
    }
    assert status["observedGeneration"] == system.llm(NAME)["metadata"]["generation"]
    assert isinstance(_complete(status["production"]["address"]), str)
    client = MlflowClient(tracking_uri=system.mlflow_url)
    assert client.get_model_version_by_alias(NAME, "production").version == "1"


def test_retraining_rolls_out_version_2_without_a_failed_request(system: System) -> None:
    address = system.status(NAME)["production"]["address"]
    failures: list[str] = []
    successes = [0]
    stop = threading.Event()

    def client_loop() -> None:
        client = OpenAI(base_url=f"{address}/v1", api_key="unused", timeout=30)
        while not stop.is_set():
            try:
                client.completions.create(
                    model=NAME, prompt="Question: How do I roll back?", max_tokens=4
                )
                successes[0] += 1
            except Exception as exc:  # every failure a user would see
                failures.append(repr(exc))
            time.sleep(0.05)

    thread = threading.Thread(target=client_loop, daemon=True)
    thread.start()
    try:
        _apply(system, e2e_manifest(max_steps=36))
        system.wait_for(
            "version 2 in production", lambda: _ready_with(system, "2"), ROLLOUT_TIMEOUT
        )
        system.wait_for(
            "version 1 retired", lambda: system.names("deployments") == [f"{NAME}-v2"], 60
        )
        time.sleep(2)
    finally:
        stop.set()
        thread.join(30)
    assert failures == [], failures[:5]
    assert successes[0] > 20
    jobs = system.names("jobs")
    assert len([j for j in jobs if j.startswith(f"{NAME}-train-")]) == 1  # old one replaced
    history = system.status(NAME)["history"]
    assert [h["version"] for h in history[:2]] == ["2", "1"]


def test_impossible_slo_refuses_version_3_and_keeps_production(system: System) -> None:
    _apply(system, e2e_manifest(max_steps=32, p95_ms=1))
    system.wait_for(
        "version 3 refused",
        lambda: "3" in system.status(NAME).get("refusedVersions", []),
        ROLLOUT_TIMEOUT,
    )
    status = system.status(NAME)
    assert status["production"]["version"] == "2"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["LoadTestPassed"]["status"] == "False"
    assert conds["LoadTestPassed"]["reason"] == "LoadTestFailed"
    assert "p95" in conds["LoadTestPassed"]["message"].lower()
    assert conds["Ready"]["status"] == "True"
    system.wait_for(
        "candidate resources removed",
        lambda: (
            f"{NAME}-v3" not in system.names("deployments")
            and f"{NAME}-candidate" not in system.names("services")
        ),
        30,
    )
    events = system.kubectl(
        "get",
        "events",
        "--field-selector",
        f"involvedObject.name={NAME},reason=Refused",
        "-o",
        "json",
    )
    messages = [e["message"] for e in json.loads(events)["items"]]
    assert any("version 3" in m for m in messages), messages
    tags = MlflowClient(tracking_uri=system.mlflow_url).get_model_version(NAME, "3").tags
    assert tags["kubellm.rollout.verdict"] == "refused"
    _complete(status["production"]["address"])


def test_badly_signed_webhook_is_refused(system: System) -> None:
    body = json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "data": {"name": NAME, "alias": "candidate", "version": "2"},
        }
    )
    url = system.operator.webhook_url
    now = str(int(time.time()))
    unsigned = httpx.post(url, content=body)
    assert unsigned.status_code == 401
    forged = httpx.post(
        url,
        content=body,
        headers={
            "X-MLflow-Delivery-Id": "d1",
            "X-MLflow-Timestamp": now,
            "X-MLflow-Signature": sign("wrong-secret", "d1", now, body),
        },
    )
    assert forged.status_code == 401
    stale_ts = str(int(time.time()) - 3600)
    stale = httpx.post(
        url,
        content=body,
        headers={
            "X-MLflow-Delivery-Id": "d2",
            "X-MLflow-Timestamp": stale_ts,
            "X-MLflow-Signature": sign("e2e-webhook-secret", "d2", stale_ts, body),
        },
    )
    assert stale.status_code == 401


def test_external_version_rolls_out_by_webhook_within_5_seconds(system: System) -> None:
    _apply(system, e2e_manifest(max_steps=32))  # a reachable SLO again; training unchanged
    operator = system.operator
    operator.stop()
    operator.poll_interval = "600s"  # only the webhook can make it react quickly
    operator.start()
    version = system.register_copy(NAME, "2")
    client = MlflowClient(tracking_uri=system.mlflow_url)
    time.sleep(3)  # let the operator finish its resume pass
    moved = time.monotonic()
    client.set_registered_model_alias(NAME, "candidate", version)
    system.wait_for(
        f"candidate version {version} deployed",
        lambda: f"{NAME}-v{version}" in system.names("deployments"),
        timeout=5.0,
        interval=0.2,
    )
    reaction = time.monotonic() - moved
    assert reaction <= 5.0
    system.wait_for(
        f"version {version} in production", lambda: _ready_with(system, version), ROLLOUT_TIMEOUT
    )
    assert system.llm(NAME)["metadata"]["generation"] >= 1


def test_external_version_rolls_out_by_polling_without_webhooks(system: System) -> None:
    operator = system.operator
    operator.stop()
    operator.webhooks = False
    operator.poll_interval = "3s"
    operator.start()
    current = _production(system)
    assert current is not None
    version = system.register_copy(NAME, current)
    time.sleep(3)
    moved = time.monotonic()
    MlflowClient(tracking_uri=system.mlflow_url).set_registered_model_alias(
        NAME, "candidate", version
    )
    system.wait_for(
        f"candidate version {version} deployed by polling",
        lambda: f"{NAME}-v{version}" in system.names("deployments"),
        timeout=3.0 + 10.0,
        interval=0.3,
    )
    assert time.monotonic() - moved <= 13.0
    system.wait_for(
        f"version {version} in production", lambda: _ready_with(system, version), ROLLOUT_TIMEOUT
    )


def test_killing_the_operator_at_every_stage_converges_without_duplicates(
    system: System,
) -> None:
    operator = system.operator
    before = _production(system)
    _apply(system, e2e_manifest(max_steps=40))

    def phase() -> str:
        return str(system.status(NAME).get("phase"))

    for stage in ("Training", "Deploying", "LoadTesting"):
        system.wait_for(f"phase {stage}", lambda s=stage: phase() == s, ROLLOUT_TIMEOUT, 0.3)
        operator.kill()
        time.sleep(1)
        operator.start()
    # mid-promotion: kill as soon as the load test finished, before the status says Ready
    system.wait_for(
        "load test finished",
        lambda: any(
            j.startswith(f"{NAME}-loadtest-") and _job_done(system, j) for j in system.names("jobs")
        ),
        ROLLOUT_TIMEOUT,
        0.2,
    )
    operator.kill()
    operator.start()
    status = system.wait_for(
        "a new version in production",
        lambda: (
            (s := system.status(NAME)).get("phase") == "Ready"
            and s["production"]["version"] != before
            and s
        ),
        ROLLOUT_TIMEOUT,
    )
    version = status["production"]["version"]
    system.wait_for(
        "one serving Deployment", lambda: system.names("deployments") == [f"{NAME}-v{version}"], 60
    )
    jobs = system.names("jobs")
    training_jobs = [j for j in jobs if j.startswith(f"{NAME}-train-")]
    loadtests = [j for j in jobs if j.startswith(f"{NAME}-loadtest-v{version}")]
    assert len(training_jobs) == 1 and len(loadtests) == 1, jobs
    # (a real cluster also has the `kubernetes` Service in this namespace)
    assert [s for s in system.names("services") if s.startswith(NAME)] == [NAME]
    assert operator.starts >= 4


def _job_done(system: System, name: str) -> bool:
    out = system.kubectl("get", "job", name, "-o", "json", check=False)
    if not out:
        return False
    conds = json.loads(out).get("status", {}).get("conditions") or []
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conds)


def test_operator_calls_are_exactly_covered_by_the_chart_rbac(system: System) -> None:
    from kubellm.operator.permissions import OPERATOR_PERMISSIONS

    granted = {(p.group, p.resource, v) for p in OPERATOR_PERMISSIONS for v in p.verbs}
    calls = operator_calls(system.cluster)
    assert calls, "no operator calls found in the apiserver's log"
    assert calls <= granted, sorted(calls - granted)
    # the core of what it does is visible in the audit
    for needed in [
        ("batch", "jobs", "create"),
        ("apps", "deployments", "create"),
        ("kubellm.dev", "llms/status", "patch"),
        ("", "events", "create"),
    ]:
        assert needed in calls
