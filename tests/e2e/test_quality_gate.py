"""The quality gate, end to end: the load-test Job scores the candidate and production on
the LLM's evaluation set (a ConfigMap, mounted read-only) through the OpenAI API, and a
candidate whose perplexity is 20% or more above production's is refused while production
stays.

Version 1 is trained as usual and promoted (a first version: no production to compare
with, so only absolute objectives apply). The spec then asks for a retrain of one step
only: version 2 is an undertrained model whose perplexity on the set is far above version
1's; the gate refuses it with the figures in the condition, the Event and the tags.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from mlflow import MlflowClient

from .conftest import System, e2e_manifest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NAME = "quality-bot"
CONFIGMAP = f"{NAME}-evaluation"
ROLLOUT_TIMEOUT = 300.0
#: lines of the training corpus's kind: version 1 has learnt them, one step has not
EVALUATION = [
    {"prompt": "Question: How do I deploy a model? Answer:"},
    {"prompt": "Question: Why was my release refused? Answer:"},
    {"prompt": "Question: How do I roll back to the previous version? Answer:"},
    {"prompt": "Question: What does the candidate alias mean? Answer:"},
]


def _apply(system: System, obj: dict[str, Any]) -> None:
    system.kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def _manifest(max_steps: int) -> dict[str, Any]:
    obj = e2e_manifest(NAME, max_steps=max_steps)
    obj["spec"]["rollout"]["evaluation"] = {
        "configMap": {"name": CONFIGMAP, "key": "evaluation.jsonl"},
        "maxPerplexityRegressionPercent": 20,
    }
    return obj


def _ready_with(system: System, version: str) -> bool:
    status = system.status(NAME)
    return (
        status.get("phase") == "Ready"
        and (status.get("production") or {}).get("version") == version
    )


def test_candidate_20_percent_more_perplexed_than_production_is_refused(system: System) -> None:
    started = time.monotonic()
    lines = "".join(json.dumps(item) + "\n" for item in EVALUATION)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIGMAP, "namespace": "default"},
        "data": {"evaluation.jsonl": lines},
    }
    _apply(system, configmap)
    try:
        _refuses_the_undertrained_candidate(system, started)
    finally:  # leave the cluster as the module found it (its LLM goes with `system`)
        system.kubectl("delete", "configmap", CONFIGMAP, "--ignore-not-found", check=False)


def _refuses_the_undertrained_candidate(system: System, started: float) -> None:
    _apply(system, _manifest(max_steps=30))
    system.wait_for("version 1 in production", lambda: _ready_with(system, "1"), ROLLOUT_TIMEOUT)
    client = MlflowClient(tracking_uri=system.mlflow_url)
    first = client.get_model_version(NAME, "1").tags
    assert float(first["kubellm.loadtest.perplexity"]) > 1.0
    assert "kubellm.loadtest.baseline_perplexity" not in first  # nothing to compare with

    _apply(system, _manifest(max_steps=1))  # retrain: version 2, undertrained
    system.wait_for(
        "version 2 refused",
        lambda: any(v.split("@")[0] == "2" for v in system.status(NAME).get("refusedVersions", [])),
        ROLLOUT_TIMEOUT,
    )
    status = system.status(NAME)
    assert status["production"]["version"] == "1" and status["phase"] == "Ready"
    conds = {c["type"]: c for c in status["conditions"]}
    message = conds["LoadTestPassed"]["message"]
    assert conds["LoadTestPassed"]["status"] == "False", message
    assert conds["LoadTestPassed"]["reason"] == "LoadTestFailed"
    assert "maxPerplexityRegressionPercent=20" in message and "production's" in message

    tags = client.get_model_version(NAME, "2").tags
    perplexity = float(tags["kubellm.loadtest.perplexity"])
    production = float(tags["kubellm.loadtest.baseline_perplexity"])
    regression = float(tags["kubellm.loadtest.perplexity_regression_percent"])
    assert perplexity >= production * 1.2 and regression >= 20, tags
    assert tags["kubellm.loadtest.verdict"] == "fail"
    assert tags["kubellm.rollout.verdict"] == "refused"
    run = client.get_run(tags["kubellm.loadtest.run_id"])
    assert run.data.metrics["perplexity"] == pytest.approx(perplexity)

    events = system.kubectl(
        "get", "events", "--field-selector", f"involvedObject.name={NAME},reason=Refused",
        "-o", "json",
    )  # fmt: skip
    messages = [e["message"] for e in json.loads(events)["items"]]
    assert any("version 2" in m and "perplexity" in m for m in messages), messages
    system.wait_for(
        "the refused candidate removed, production kept",
        lambda: system.names("deployments") == [f"{NAME}-v1"],
        60,
    )
    print(
        f"\nquality gate: v2 perplexity {perplexity:g} vs production {production:g} "
        f"(+{regression:.0f}%), refused; {time.monotonic() - started:.0f} s"
    )
