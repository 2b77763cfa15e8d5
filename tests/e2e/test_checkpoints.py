"""A training pod that is deleted mid-run resumes from its checkpoint claim (issue 12 item 9).

The LLM keeps checkpoints on a PersistentVolumeClaim the operator creates. Once a checkpoint
exists, the training pod is deleted (as an eviction would); the Job starts a new pod, which
finds the checkpoint on the claim, resumes the same MLflow run and finishes from there
instead of starting again at step 0.
"""

from __future__ import annotations

import json
import time

import pytest

from .conftest import System, e2e_manifest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

NAME = "ckpt-bot"
#: a checkpoint every EVERY steps (spec.training.checkpoints.everySteps), of MAX_STEPS
EVERY, MAX_STEPS = 40, 300


def _training(system: System) -> dict[str, object]:
    return dict(system.status(NAME).get("training") or {})


def _pods(system: System) -> list[str]:
    out = system.kubectl(
        "get", "pods", "-l", f"job-name={_training(system).get('job')}", "-o", "name"
    )
    return out.split()


def test_deleted_training_pod_resumes_from_its_checkpoint_claim(system: System) -> None:
    manifest = e2e_manifest(NAME, max_steps=MAX_STEPS)
    manifest["spec"]["training"]["hyperparameters"]["sequenceLength"] = 64
    manifest["spec"]["training"]["checkpoints"] = {"size": "1Gi", "everySteps": EVERY}
    system.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    # wait for a checkpoint, with some margin
    system.wait_for(
        "a checkpoint",
        lambda: (_training(system).get("step") or 0) >= EVERY * 3 // 2 and _training(system),
        300,
    )
    claim = json.loads(system.kubectl("get", "pvc", f"{NAME}-checkpoints", "-o", "json"))
    assert claim["metadata"]["ownerReferences"][0]["kind"] == "LLM"
    (pod,) = _pods(system)
    first_log = system.kubectl("logs", pod)
    run_id = first_log.split("mlflow run ", 1)[1].split()[0]
    assert run_id, first_log[:500]
    system.kubectl("delete", pod, "--wait=false")
    deleted_at = time.monotonic()
    system.wait_for(
        "a new training pod", lambda: [p for p in _pods(system) if p != pod], 120, interval=0.5
    )
    # the replacement continues the same run from a step > 0 and finishes
    done = system.wait_for(
        "training finished",
        lambda: _training(system).get("state") == "Succeeded" and _training(system),
        600,
    )
    assert done["step"] == MAX_STEPS
    logs = system.kubectl("logs", f"job/{done['job']}")
    # the same MLflow run, continued from the checkpoint on the claim, not from step 0
    assert f"mlflow run {run_id} (resumed)" in logs, logs[:2000]
    assert "resuming from" in logs and "/checkpoint-" in logs, logs[:2000]
    assert f"step 10/{MAX_STEPS}" not in logs, "the replacement started again at step 0"
    assert time.monotonic() - deleted_at < 600
