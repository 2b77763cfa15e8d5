"""Issue 12 item 8: what reaches the operator from outside cannot trip it up.

Webhook deliveries (replays, non-finite timestamps, non-ASCII signatures), training logs,
termination messages written by containers, and Jobs or pods that merely carry our names
and labels: each is input the operator does not control.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm.api import LLM, parse_llm
from kubellm.api.results import TrainingSummary
from kubellm.api.status import LLMStatus
from kubellm.operator.builders import training_hash
from kubellm.operator.config import OperatorConfig
from kubellm.operator.naming import training_job_name
from kubellm.operator.observed import JobState, Observed, RegistryState, TrainingProgress
from kubellm.operator.planning import plan
from kubellm.operator.reading import observe, parse_progress
from kubellm.operator.verdicts import parse_loadtest_message, parse_training_message
from kubellm.operator.webhooks import DeliveryLog, WebhookRejected, sign, verify

from .memory_kube import MemoryKube

REPO = Path(__file__).resolve().parents[3]
BODY = json.dumps(
    {"entity": "model_version", "action": "created", "data": {"name": "bot", "version": "4"}}
)


def _headers(ts: str, delivery: str = "d1", signature: str | None = None) -> dict[str, str]:
    return {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Signature": signature or sign("s", delivery, ts, BODY),
    }


# --- webhook deliveries ----------------------------------------------------------------


def test_a_replayed_delivery_id_is_refused_within_the_window() -> None:
    log = DeliveryLog()
    verify("s", _headers("1000"), BODY, now=1000, deliveries=log)
    with pytest.raises(WebhookRejected, match="replayed delivery"):
        verify("s", _headers("1000"), BODY, now=1100, deliveries=log)
    verify("s", _headers("1000", delivery="d2"), BODY, now=1100, deliveries=log)  # new id


def test_the_log_forgets_ids_only_after_their_timestamps_expired() -> None:
    log = DeliveryLog(ttl=600)
    assert log.remember("a", 0.0) and not log.remember("a", 599.0)
    assert log.remember("a", 1200.0)  # by now its timestamp is refused anyway
    small = DeliveryLog(ttl=600, max_entries=2)
    for i, name in enumerate("xyz"):
        assert small.remember(name, float(i))
    assert small.remember("x", 3.0)  # the oldest was forgotten to stay bounded


@pytest.mark.parametrize("ts", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_non_finite_timestamps_are_refused(ts: str) -> None:
    with pytest.raises(WebhookRejected, match="finite"):
        verify("s", _headers(ts), BODY, now=1000)


@pytest.mark.parametrize(
    "headers",
    [
        _headers("1000", signature="v1,ünïcødé"),
        _headers("1000", delivery="dé"),
        _headers("1000", delivery="x" * 500),
    ],
    ids=["signature", "delivery-id", "long-id"],
)
def test_odd_headers_are_a_401_not_a_crash(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookRejected):
        verify("s", headers, BODY, now=1000)


# --- training logs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("step 3/10 | loss ...", (3, 10, None)),
        ("step 3/10 loss nan", (3, 10, None)),
        ("step 4/? loss 2.5e-1 lr 1e-3", (4, None, 0.25)),
        ("step 5/10 (50%) loss 1.75, eval", (5, 10, 1.75)),
        ("step 99999999999999999999999/1 loss 1", None),
    ],
)
def test_progress_lines_never_raise(line: str, expected: tuple[Any, ...] | None) -> None:
    progress = parse_progress(line)
    if expected is None:
        assert progress is None
    else:
        assert progress == TrainingProgress(*expected)


def _llm_object(uid: str = "llm-uid") -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REPO / "examples/tiny-pretrain.yaml").read_text())
    obj["metadata"].update(namespace="default", uid=uid, generation=1)
    return obj


class NoRegistry:
    def resolve_alias(self, name: str, alias: str) -> str | None:
        return None

    def get_version_tags(self, name: str, version: str) -> dict[str, str]:
        return {}


def _owner(kind: str, name: str, uid: str) -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": kind, "name": name, "uid": uid, "controller": True}]


def _job(name: str, component: str, owner_uid: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": uid,
            "labels": {"kubellm.dev/llm": "support-bot", "kubellm.dev/component": component},
            "ownerReferences": _owner("LLM", "support-bot", owner_uid),
        },
        "status": {"active": 1},
    }


def _pod(name: str, job: str, owner_uid: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"kubellm.dev/llm": "support-bot", "job-name": job},
            "ownerReferences": _owner("Job", job, owner_uid),
            "creationTimestamp": "2026-11-28T12:00:00Z",
        },
        "status": status,
    }


def _observe(kube: MemoryKube, obj: dict[str, Any]) -> Observed:
    registry: Any = NoRegistry()
    llm: LLM = parse_llm(obj)
    result: Observed = observe(kube, llm, lambda: registry)
    return result


def test_observe_survives_an_odd_training_log_and_a_failing_log_call() -> None:
    obj = _llm_object()
    name = training_job_name("support-bot", training_hash(parse_llm(obj)))
    kube = MemoryKube()
    kube.add(_job(name, "training", "llm-uid", uid="job-uid"))
    kube.add(_pod("train-0", name, "job-uid", phase="Running"))
    kube.logs[("default", "train-0")] = "loading\nstep 3/10 | loss ...\n"
    assert _observe(kube, obj).jobs[name].progress == TrainingProgress(3, 10, None)

    def broken(namespace: str, pod: str, tail_lines: int) -> str:
        raise RuntimeError("pods/log: 500")

    kube.pod_log = broken  # type: ignore[method-assign]
    assert _observe(kube, obj).jobs[name].progress is None


# --- who controls a Job and its pods ----------------------------------------------------


def test_jobs_and_pods_count_only_when_controlled_by_the_llm_and_its_job() -> None:
    verdict = json.dumps({"verdict": "pass", "reasons": [], "figures": {"requests": 999}})
    kube = MemoryKube()
    # someone with Job rights creates the load-test Job the operator would create
    kube.add(_job("support-bot-loadtest-v2", "loadtest", "someone-else", uid="forged"))
    # ... and a pod with the real Job's name and a "pass" termination message
    kube.add(_job("support-bot-loadtest-v3", "loadtest", "llm-uid", uid="job-v3"))
    forged_pod = _pod("lt-v3-forged", "support-bot-loadtest-v3", "forged")
    forged_pod["status"] = {
        "phase": "Succeeded",
        "containerStatuses": [
            {"state": {"terminated": {"exitCode": 0, "message": verdict}}, "lastState": {}}
        ],
    }
    kube.add(forged_pod)
    jobs = _observe(kube, _llm_object()).jobs
    assert "support-bot-loadtest-v2" not in jobs  # not the operator's: its result is never read
    assert jobs["support-bot-loadtest-v3"].message is None  # the forged pod's message neither


# --- termination messages ---------------------------------------------------------------


def test_wrongly_typed_training_summary_fields_are_dropped_or_coerced() -> None:
    message = json.dumps(
        {
            "modelVersion": ["7"],
            "runId": {"id": 1},
            "error": ["CUDA OOM", "at step 3", {"x": 1}],
            "evalLoss": float("nan"),
            "trainLoss": True,
            "initialEvalLoss": 1.5,
        }
    )
    assert parse_training_message(message) == TrainingSummary(
        error="CUDA OOM; at step 3", initial_eval_loss=1.5
    )
    summary = parse_training_message('{"modelVersion": 7, "runId": "abc123"}')
    assert (summary.model_version, summary.run_id) == ("7", "abc123")


def test_a_completed_training_with_list_fields_still_writes_a_valid_status() -> None:
    llm = parse_llm(_llm_object())
    name = training_job_name(llm.name, training_hash(llm))
    message = json.dumps({"modelVersion": ["1"], "runId": ["r"], "evalLoss": "x"})
    job = JobState(name=name, component="training", complete=True, succeeded=1, message=message)
    p = plan(
        llm,
        Observed(jobs={name: job}, registry=RegistryState()),
        OperatorConfig(tracking_uri="http://mlflow:5000"),
        datetime(2026, 11, 28, tzinfo=UTC),
    )
    dumped = p.status.dump()
    LLMStatus.model_validate(dumped)  # what the next reconcile reads back
    assert (
        dumped["training"].get("runId") is None and dumped["training"].get("modelVersion") is None
    )


def test_loadtest_summary_with_odd_types_fails_closed_and_reads_cleanly() -> None:
    figures = parse_loadtest_message(
        json.dumps({"verdict": ["pass"], "reasons": "p95 too high", "requests": float("inf")}), 0
    )
    assert figures.verdict == "fail" and figures.reasons == ["p95 too high"]
    assert figures.requests is None
    figures = parse_loadtest_message(
        json.dumps({"verdict": "fail", "reasons": ["GET https://u:pw@h/x failed", 3, None]}), 1
    )
    assert figures.reasons == ["GET https://***@h/x failed", "3"]


def test_a_training_message_nested_too_deep_to_parse_is_reported_not_raised() -> None:
    llm = parse_llm(_llm_object())
    name = training_job_name(llm.name, training_hash(llm))
    job = JobState(name=name, component="training", failed_final=True, message="[" * 5000)
    p = plan(
        llm,
        Observed(jobs={name: job}, registry=RegistryState()),
        OperatorConfig(tracking_uri="http://mlflow:5000"),
        datetime(2026, 11, 28, tzinfo=UTC),
    )
    assert p.status.training is not None and p.status.training.message == "[" * 500
    LLMStatus.model_validate(p.status.dump())
