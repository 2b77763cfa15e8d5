"""plan(): every state of an LLM's life, decided with no server at all."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from kubellm.api import LLM, parse_llm
from kubellm.api.status import ConditionStatus, LLMStatus, Phase
from kubellm.operator.builders import training_hash
from kubellm.operator.config import OperatorConfig
from kubellm.operator.naming import training_job_name
from kubellm.operator.observed import (
    DeploymentState,
    JobState,
    Observed,
    RegistryState,
    ServiceState,
    TrainingProgress,
)
from kubellm.operator.planning import RETRY_ANNOTATION, Plan, plan, plan_invalid
from kubellm.operator.verdicts import parse_loadtest_message

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
CONFIG = OperatorConfig(tracking_uri="http://mlflow:5000", drain_delay=3.0)


def _llm(
    path: str = "examples/tiny-pretrain.yaml",
    *,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    mutate: Any = None,
) -> LLM:
    obj = yaml.safe_load((REPO / path).read_text())
    obj["metadata"].update(
        uid="uid-1", generation=3, namespace="default", annotations=annotations or {}
    )
    if mutate:
        mutate(obj)
    if status:
        obj["status"] = status
    return parse_llm(obj)


def _verified(version: str, **more: Any) -> dict[str, Any]:
    """A status in which the operator promoted ``version`` itself (what it trusts)."""
    return {"production": {"version": version}, "promotedVersions": [version], **more}


def _carry(llm: LLM, p: Plan) -> LLM:
    """The LLM as the next reconcile sees it: the status the plan wrote."""
    return llm.model_copy(update={"status": LLMStatus.model_validate(p.status.dump())})


def _kinds(p: Plan) -> list[tuple[str, str]]:
    return [(m["kind"], m["metadata"]["name"]) for m in p.apply]


def _cond(p: Plan, type_: str) -> tuple[ConditionStatus, str]:
    c = next(c for c in p.status.conditions if c.type == type_)
    return c.status, c.reason


def _train_name(llm: LLM) -> str:
    return training_job_name(llm.name, training_hash(llm))


def _ready_dep(name: str, version: str) -> DeploymentState:
    return DeploymentState(
        name=name,
        version=version,
        replicas=1,
        ready_replicas=1,
        available_replicas=1,
        updated_replicas=1,
    )


def _svc(name: str, version: str, ip: str) -> ServiceState:
    return ServiceState(name=name, version=version, cluster_ip=ip)


def _done_training(llm: LLM, version: str = "1") -> JobState:
    return JobState(
        name=_train_name(llm),
        component="training",
        succeeded=1,
        complete=True,
        message=json.dumps({"status": "succeeded", "modelVersion": version, "evalLoss": 2.1}),
    )


def test_new_llm_with_training_creates_the_training_job_and_waits() -> None:
    llm = _llm()
    p = plan(llm, Observed(), CONFIG, NOW)
    assert ("Job", _train_name(llm)) in _kinds(p)
    assert p.status.phase is Phase.TRAINING
    assert _cond(p, "Trained") == (ConditionStatus.FALSE, "TrainingPending")
    assert _cond(p, "SpecValid") == (ConditionStatus.TRUE, "Valid")
    assert p.requeue_after is not None
    assert [e.reason for e in p.events].count("TrainingStarted") == 1
    assert p.status.observed_generation == 3


def test_running_training_is_not_recreated_and_reports_progress() -> None:
    llm = _llm()
    job = JobState(
        name=_train_name(llm),
        component="training",
        active=1,
        progress=TrainingProgress(step=40, total=150, loss=3.25),
    )
    p = plan(llm, Observed(jobs={job.name: job}), CONFIG, NOW)
    assert ("Job", job.name) not in _kinds(p)
    assert p.status.training is not None
    assert (p.status.training.step, p.status.training.total_steps) == (40, 150)
    assert p.status.training.loss == 3.25
    status, reason = _cond(p, "Trained")
    assert (status, reason) == (ConditionStatus.FALSE, "TrainingRunning")


def test_changed_training_spec_replaces_the_old_job() -> None:
    old = _llm()
    new = _llm(mutate=lambda o: o["spec"]["training"]["hyperparameters"].update(maxSteps=200))
    assert _train_name(old) != _train_name(new)
    running = JobState(name=_train_name(old), component="training", active=1)
    p = plan(new, Observed(jobs={running.name: running}), CONFIG, NOW)
    assert ("Job", _train_name(new)) in _kinds(p)
    assert any(d.kind == "Job" and d.name == running.name for d in p.delete)


def test_serving_edit_does_not_retrain() -> None:
    old = _llm()
    new = _llm(mutate=lambda o: o["spec"]["serving"]["replicas"].update(max=5))
    assert training_hash(old) == training_hash(new)


def test_failed_training_keeps_production_and_says_why() -> None:
    llm = _llm(status=_verified("1"))
    job = JobState(
        name=_train_name(llm),
        component="training",
        failed=3,
        failed_final=True,
        message=json.dumps({"status": "failed", "error": "dataset is empty"}),
    )
    obs = Observed(
        jobs={job.name: job},
        deployments={"support-bot-v1": _ready_dep("support-bot-v1", "1")},
        services={"support-bot": _svc("support-bot", "1", "127.96.0.5")},
        registry=RegistryState(production="1", candidate="1"),
    )
    p = plan(llm, obs, CONFIG, NOW)
    assert _cond(p, "Trained") == (ConditionStatus.FALSE, "TrainingFailed")
    assert "dataset is empty" in next(c.message for c in p.status.conditions if c.type == "Trained")
    assert ("Service", "support-bot") in _kinds(p)
    assert not any(d.kind == "Deployment" for d in p.delete)
    assert _cond(p, "Ready")[0] is ConditionStatus.TRUE


def test_trained_version_behind_candidate_alias_gets_a_candidate_deployment() -> None:
    llm = _llm()
    job = _done_training(llm)
    obs = Observed(jobs={job.name: job}, registry=RegistryState(candidate="1"))
    p = plan(llm, obs, CONFIG, NOW)
    kinds = _kinds(p)
    assert ("Deployment", "support-bot-v1") in kinds
    assert ("Service", "support-bot-candidate") in kinds
    assert ("ConfigMap", "support-bot-prompts") in kinds
    assert p.status.phase is Phase.DEPLOYING
    assert _cond(p, "Trained") == (ConditionStatus.TRUE, "TrainingSucceeded")
    assert p.status.training is not None and p.status.training.model_version == "1"
    dep = next(m for m in p.apply if m["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 1
    init = dep["spec"]["template"]["spec"]["initContainers"][0]
    assert "fetch-model" in init["command"] and "models:/support-bot/1" in init["command"]


def _candidate_ready(llm: LLM, **registry: Any) -> Observed:
    job = _done_training(llm, "2")
    deployments = {"support-bot-v2": _ready_dep("support-bot-v2", "2")}
    services = {"support-bot-candidate": _svc("support-bot-candidate", "2", "127.96.0.9")}
    if registry.get("production") == "1":
        deployments["support-bot-v1"] = _ready_dep("support-bot-v1", "1")
        services["support-bot"] = _svc("support-bot", "1", "127.96.0.5")
    return Observed(
        jobs={job.name: job},
        deployments=deployments,
        services=services,
        registry=RegistryState(candidate="2", **registry),
    )


def test_ready_candidate_gets_a_load_test_against_its_cluster_ip() -> None:
    llm = _llm()
    p = plan(llm, _candidate_ready(llm), CONFIG, NOW)
    job = next(m for m in p.apply if m["metadata"]["name"] == "support-bot-loadtest-v2")
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--target") + 1] == "http://127.96.0.9:8000"
    assert "--baseline" not in command
    assert p.status.phase is Phase.LOAD_TESTING
    assert _cond(p, "CandidateReady") == (ConditionStatus.TRUE, "CandidateAvailable")


def test_load_test_uses_production_as_baseline_when_there_is_one() -> None:
    llm = _llm(status=_verified("1"))
    p = plan(llm, _candidate_ready(llm, production="1"), CONFIG, NOW)
    job = next(m for m in p.apply if m["metadata"]["name"] == "support-bot-loadtest-v2")
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--baseline") + 1] == "http://127.96.0.5:8000"


def _with_loadtest(obs: Observed, job: JobState) -> Observed:
    return Observed(
        jobs={**obs.jobs, job.name: job},
        deployments=obs.deployments,
        services=obs.services,
        registry=obs.registry,
    )


PASS = json.dumps(
    {
        "verdict": "pass",
        "p95LatencyMs": 120.0,
        "requestsPerSecond": 30.5,
        "tokensPerSecond": 400.0,
        "errorRate": 0.0,
        "requests": 300,
        "reasons": [],
    }
)
FAIL = json.dumps(
    {
        "verdict": "fail",
        "p95LatencyMs": 900.0,
        "errorRate": 0.0,
        "requests": 50,
        "reasons": ["p95 latency 900 ms > objective 100 ms"],
    }
)


def test_running_load_test_waits() -> None:
    llm = _llm()
    obs = _with_loadtest(
        _candidate_ready(llm),
        JobState(name="support-bot-loadtest-v2", component="loadtest", version="2", active=1),
    )
    p = plan(llm, obs, CONFIG, NOW)
    assert p.status.phase is Phase.LOAD_TESTING
    assert _cond(p, "LoadTestPassed") == (ConditionStatus.UNKNOWN, "LoadTestRunning")
    assert not p.registry


def test_passed_load_test_promotes_registry_service_and_hpa() -> None:
    llm = _llm()
    obs = _with_loadtest(
        _candidate_ready(llm, production="1"),
        JobState(
            name="support-bot-loadtest-v2",
            component="loadtest",
            version="2",
            succeeded=1,
            complete=True,
            message=PASS,
            exit_code=0,
        ),
    )
    p = plan(llm, obs, CONFIG, NOW)
    aliases = [(a.alias, a.version) for a in p.registry if a.kind == "set_alias"]
    assert aliases == [("production", "2")]
    svc = next(m for m in p.apply if m["metadata"]["name"] == "support-bot")
    assert svc["spec"]["selector"]["kubellm.dev/version"] == "2"
    hpa = next(m for m in p.apply if m["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "support-bot-v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    # the old release keeps serving until the Service has switched away from it
    assert not any(d.name == "support-bot-v1" for d in p.delete)
    assert p.status.phase is Phase.PROMOTING
    assert p.status.production is not None and p.status.production.version == "2"
    assert p.status.history[0].version == "2" and p.status.history[0].verdict == "promoted"
    assert p.status.last_p95_ms == 120.0
    assert "Promoted" in [e.reason for e in p.events]


def test_old_release_is_retired_only_after_draining() -> None:
    llm = _llm(
        status=_verified("2", production={"version": "2", "promotedAt": "2026-11-28T11:59:59Z"})
    )
    obs = Observed(
        deployments={
            "support-bot-v1": _ready_dep("support-bot-v1", "1"),
            "support-bot-v2": _ready_dep("support-bot-v2", "2"),
        },
        services={"support-bot": _svc("support-bot", "2", "127.96.0.5")},
        registry=RegistryState(candidate="2", production="2"),
        jobs={_train_name(llm): _done_training(llm, "2")},
    )
    early = plan(llm, obs, CONFIG, NOW)
    assert not any(d.name == "support-bot-v1" for d in early.delete)
    assert early.requeue_after is not None
    later = plan(llm, obs, CONFIG, NOW + timedelta(seconds=5))
    assert any(d.kind == "Deployment" and d.name == "support-bot-v1" for d in later.delete)
    assert later.status.phase is Phase.READY


def test_failed_load_test_refuses_and_keeps_production() -> None:
    llm = _llm(status=_verified("1"))
    obs = _with_loadtest(
        _candidate_ready(llm, production="1"),
        JobState(
            name="support-bot-loadtest-v2",
            component="loadtest",
            version="2",
            failed=1,
            failed_final=True,
            message=FAIL,
            exit_code=1,
        ),
    )
    p = plan(llm, obs, CONFIG, NOW)
    assert not [a for a in p.registry if a.kind == "set_alias"]
    tags = next(a.tags for a in p.registry if a.kind == "set_tags")
    assert tags["kubellm.rollout.verdict"] == "refused"
    deleted = {(d.kind, d.name) for d in p.delete}
    assert ("Deployment", "support-bot-v2") in deleted
    assert ("Service", "support-bot-candidate") in deleted
    assert ("Deployment", "support-bot-v1") not in deleted
    svc = next(m for m in p.apply if m["metadata"]["name"] == "support-bot")
    assert svc["spec"]["selector"]["kubellm.dev/version"] == "1"
    assert _cond(p, "LoadTestPassed") == (ConditionStatus.FALSE, "LoadTestFailed")
    assert "p95 latency 900 ms" in next(
        c.message for c in p.status.conditions if c.type == "LoadTestPassed"
    )
    assert "2" in p.status.refused_versions
    warning = next(e for e in p.events if e.reason == "Refused")
    assert warning.type == "Warning"
    # and the next reconcile does not deploy it again
    again = plan(_carry(llm, p), obs, CONFIG, NOW + timedelta(seconds=2))
    assert ("Deployment", "support-bot-v2") not in _kinds(again)
    assert _cond(again, "Ready")[0] is ConditionStatus.TRUE


def test_refusal_recorded_only_in_registry_tags_is_still_honoured() -> None:
    llm = _llm()
    obs = Observed(
        registry=RegistryState(
            candidate="4", production=None, candidate_tags={"kubellm.rollout.verdict": "refused"}
        )
    )
    p = plan(
        llm.model_copy(update={"spec": llm.spec.model_copy(update={"training": None})}),
        obs,
        CONFIG,
        NOW,
    )
    assert ("Deployment", "support-bot-v4") not in _kinds(p)


def test_retry_annotation_tests_a_refused_version_again_under_a_new_job() -> None:
    llm = _llm(status={"refusedVersions": ["2"]}, annotations={RETRY_ANNOTATION: "please"})
    obs = _candidate_ready(llm)
    p = plan(llm, obs, CONFIG, NOW)
    names = [n for k, n in _kinds(p) if k == "Job"]
    assert len(names) == 1 and names[0].startswith("support-bot-loadtest-v2-")
    assert len(names[0]) <= 63


def test_candidate_that_never_becomes_ready_is_refused() -> None:
    llm = _llm()
    dep = DeploymentState(
        name="support-bot-v2",
        version="2",
        replicas=1,
        pod_problem="server: CrashLoopBackOff out of memory",
    )
    obs = Observed(
        jobs={_train_name(llm): _done_training(llm, "2")},
        deployments={dep.name: dep},
        registry=RegistryState(candidate="2"),
    )
    p = plan(llm, obs, CONFIG, NOW)
    assert _cond(p, "LoadTestPassed") == (ConditionStatus.FALSE, "LoadTestFailed")
    assert any(d.name == "support-bot-v2" for d in p.delete)


def test_unreachable_registry_changes_nothing() -> None:
    llm = _llm()
    obs = Observed(registry=RegistryState(reachable=False, error="connection refused"))
    p = plan(llm, obs, CONFIG, NOW)
    assert p.apply == [] and p.delete == [] and p.registry == []
    assert "connection refused" in (p.status.message or "")
    assert p.requeue_after is not None


def test_steady_production_is_ready_and_idle() -> None:
    llm = _llm("examples/registry-rollout.yaml", status=_verified("5"))
    name = llm.name
    obs = Observed(
        deployments={f"{name}-v5": _ready_dep(f"{name}-v5", "5")},
        services={name: _svc(name, "5", "127.96.0.7")},
        hpas={name: None},
        registry=RegistryState(candidate="5", production="5"),
    )
    p = plan(llm, obs, CONFIG, NOW)
    assert p.status.phase is Phase.READY
    assert _cond(p, "Ready") == (ConditionStatus.TRUE, "ProductionServing")
    assert _cond(p, "Trained") == (ConditionStatus.TRUE, "NoTrainingRequested")
    assert p.requeue_after is None and p.delete == []
    assert p.status.production is not None
    assert p.status.production.address == "http://127.96.0.7:8000"
    # the HPA, not the operator, owns the production replica count
    hpa = next(m for m in p.apply if m["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_plan_is_deterministic() -> None:
    llm = _llm()
    obs = _candidate_ready(llm, production="1")
    a, b = plan(llm, obs, CONFIG, NOW), plan(llm, obs, CONFIG, NOW)
    assert a.apply == b.apply and a.status == b.status and a.events == b.events


def test_multi_node_training_is_an_indexed_job_under_torchrun() -> None:
    llm = _llm(
        mutate=lambda o: o["spec"]["training"].update(
            nodes=2, resources={"gpus": 4}, nodeSelector={"pool": "gpu"}
        )
    )
    p = plan(llm, Observed(), CONFIG, NOW)
    job = next(m for m in p.apply if m["kind"] == "Job")
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][0] == "torchrun" and "--nproc-per-node=4" in container["command"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert job["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "gpu"}
    assert ("Service", job["metadata"]["name"]) in _kinds(p)


def test_invalid_spec_records_the_reason() -> None:
    p = plan_invalid(LLMStatus(), 4, ["spec.serving.replicas.max: must be >= min (2 > 1)"])
    assert p.status.phase is Phase.INVALID
    cond = next(c for c in p.status.conditions if c.type == "SpecValid")
    assert cond.status is ConditionStatus.FALSE and "replicas.max" in cond.message
    assert p.events[0].type == "Warning"


def test_nonzero_exit_never_passes_even_if_the_message_says_so() -> None:
    assert parse_loadtest_message(PASS, 1).verdict == "fail"
    assert parse_loadtest_message("garbage", 2).verdict == "error"
    assert parse_loadtest_message(None, 0).verdict == "fail"


def test_vllm_engine_renders_the_vllm_server_on_the_fetched_model() -> None:
    llm = _llm(mutate=lambda o: o["spec"]["serving"].update(engine={"name": "vllm"}))
    p = plan(llm, _candidate_ready(llm), CONFIG, NOW)
    dep = next(m for m in p.apply if m["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    server = pod["containers"][0]
    assert server["image"] == CONFIG.vllm_image
    assert "--model=/models/model" in server["args"]
    assert "fetch-model" in pod["initContainers"][0]["command"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/health"


def test_hpa_on_inflight_requests_reads_the_servers_gauge() -> None:
    llm = _llm()
    p = plan(
        llm,
        _with_loadtest(
            _candidate_ready(llm, production="1"),
            JobState(
                name="support-bot-loadtest-v2",
                component="loadtest",
                version="2",
                succeeded=1,
                complete=True,
                message=PASS,
                exit_code=0,
            ),
        ),
        CONFIG,
        NOW,
    )
    hpa = next(m for m in p.apply if m["kind"] == "HorizontalPodAutoscaler")
    metric = hpa["spec"]["metrics"][0]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "kubellm_inflight_requests"
    assert metric["pods"]["target"]["averageValue"] == "8"
