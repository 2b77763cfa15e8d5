"""The operator's I/O one tier below e2e: the real reader, planner, executor and reconciler
against an in-process localkube API server (REST, the LLM CRD, no kopf, no controllers) and
a registry in memory.

What these pin is what only a real API server shows: which requests a reconcile sends (a
converged LLM costs reads only), that children come back when deleted, and that a refusal
by the server lands in the LLM's status.
"""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from kubellm.operator.executing import ChildrenRefused
from kubellm.operator.naming import candidate_service_name, production_service_name
from kubellm.operator.reconciling import Reconciler
from localkube.apiserver.threaded import ThreadedApiServer

from .conftest import Commits
from .fakes import Write
from .world import CONFIG, NAME, World

STATUS_WRITE = Write("patch", "LLM", NAME, "status")


def _not_events(writes: list[Write]) -> list[Write]:
    return [w for w in writes if w.kind != "Event"]


def test_a_new_llm_gets_its_training_job_and_one_status_write(
    world: World, commits: Commits
) -> None:
    world.create_llm()
    commits.take()

    outcome = world.reconcile()

    writes = world.operator.take()
    job = world.one("Job", "training")
    assert _not_events(writes) == [Write("create", "Job", job["metadata"]["name"]), STATUS_WRITE]
    assert [e["reason"] for e in world.events()].count("TrainingStarted") == 1
    assert len(commits.take()) == len(writes)  # each write reached the server, nothing else
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("LLM", world.llm()["metadata"]["uid"])
    status = world.status()
    assert status["phase"] == "Training"
    assert world.condition("Trained")["reason"] == "TrainingPending"
    assert status["training"]["job"] == job["metadata"]["name"]
    assert outcome.requeue_after is not None  # a Job in flight is looked at again
    assert outcome.status_written


def test_a_completed_training_job_brings_up_the_candidate_deployment_and_service(
    world: World,
) -> None:
    world.create_llm()
    world.reconcile()
    world.reconcile()  # the Job runs: nothing new is created
    assert [w for w in world.operator.take() if w.verb == "create" and w.kind != "Event"] == [
        Write("create", "Job", world.one("Job", "training")["metadata"]["name"])
    ]
    assert not world.children("Deployment")

    world.train(version="3")
    world.reconcile()

    created = {(w.kind, w.name) for w in world.operator.take() if w.verb == "create"}
    deployment = world.one("Deployment", "serving")
    assert deployment["metadata"]["labels"]["kubellm.dev/version"] == "3"
    assert ("Deployment", deployment["metadata"]["name"]) in created
    assert ("Service", candidate_service_name(NAME)) in created
    service = world.kube.get("Service", world.namespace, candidate_service_name(NAME))
    assert service is not None and service["spec"]["selector"]["kubellm.dev/version"] == "3"
    assert not world.children("Job", "loadtest")  # not before the candidate is available
    status = world.status()
    assert status["training"]["state"] == "Succeeded"
    assert status["training"]["modelVersion"] == "3"
    assert world.condition("Trained")["status"] == "True"
    assert status["candidate"]["version"] == "3"
    assert status["candidate"]["state"] == "Starting"
    assert status["phase"] == "Deploying"


def test_polling_a_running_training_job_makes_zero_writes(world: World, commits: Commits) -> None:
    world.create_llm()
    world.reconcile()  # creates the Job
    world.reconcile()  # sees it running: Pending -> Running
    assert world.condition("Trained")["reason"] == "TrainingRunning"
    world.operator.take()
    commits.take()

    outcome = world.reconcile()

    assert world.operator.take() == []
    assert commits.take() == []
    assert not outcome.status_written
    assert outcome.requeue_after is not None  # still polled while the Job runs


def test_a_changed_training_spec_replaces_the_running_job(world: World) -> None:
    world.create_llm()
    world.reconcile()
    old = world.one("Job", "training")["metadata"]["name"]
    world.kube.patch(
        "LLM", world.namespace, NAME, {"spec": {"training": {"hyperparameters": {"maxSteps": 300}}}}
    )
    assert world.llm()["metadata"]["generation"] == 2
    world.operator.take()

    world.reconcile()

    new = world.one("Job", "training")["metadata"]["name"]
    assert new != old
    writes = _not_events(world.operator.take())
    assert Write("delete", "Job", old) in writes and Write("create", "Job", new) in writes
    assert writes.count(STATUS_WRITE) == 1
    assert any(e["reason"] == "TrainingSuperseded" and old in e["message"] for e in world.events())
    status = world.status()
    assert status["observedGeneration"] == 2
    assert status["training"]["job"] == new


def test_a_refused_candidate_is_removed_once_and_not_tested_again(
    world: World, commits: Commits
) -> None:
    world.deploy_candidate()
    loadtest = world.one("Job", "loadtest")["metadata"]["name"]
    world.fail_load_test("p95 9000 ms > 5000 ms")
    world.registry.writes.clear()

    world.reconcile()

    assert [e["type"] for e in world.events() if e["reason"] == "Refused"] == ["Warning"]
    tags = world.registry.get_version_tags(NAME, "1")
    assert tags["kubellm.rollout.verdict"] == "refused"
    assert world.status()["refusedVersions"] == ["1"]
    assert world.condition("CandidateReady")["reason"] == "CandidateRefused"
    assert "p95 9000 ms > 5000 ms" in world.condition("LoadTestPassed")["message"]
    for _ in range(3):  # on failure Rollback: the candidate's children go
        world.operator.take()
        world.reconcile()
        if not world.operator.take():
            break
    assert world.children("Deployment") == []
    assert world.kube.get("Service", world.namespace, candidate_service_name(NAME)) is None
    assert [j["metadata"]["name"] for j in world.children("Job", "loadtest")] == [loadtest]
    assert len(world.registry.writes) == 1  # tagged once, never again
    commits.take()

    outcome = world.reconcile()

    assert world.operator.take() == []
    assert commits.take() == []
    assert not outcome.status_written


def test_a_converged_llm_reconciled_again_makes_zero_writes(world: World, commits: Commits) -> None:
    world.converge()
    assert world.condition("Ready")["reason"] == "ProductionServing"
    assert world.registry.resolve_alias(NAME, world.spec.rollout.production_alias) == "1"
    # the counters see writes: getting here took some
    assert world.operator.take() and commits.take() and world.registry.writes
    world.registry.writes.clear()
    time.sleep(1.1)  # a status stamped with "now" on every pass would differ by now

    outcome = world.reconcile()

    assert world.operator.take() == []
    assert commits.take() == []
    assert not outcome.status_written
    assert world.registry.writes == []
    assert outcome.requeue_after is None and not outcome.invalid


def test_a_restarted_operator_makes_zero_writes_on_a_converged_llm(
    world: World, commits: Commits
) -> None:
    world.converge()
    world.operator.take()
    commits.take()
    world.registry.writes.clear()

    registry = world.registry
    restarted = Reconciler(
        world.operator,
        CONFIG,
        registry_factory=lambda uri: registry,  # type: ignore[arg-type,return-value]
    )
    outcome = restarted.reconcile(world.namespace, NAME)

    assert world.operator.take() == []
    assert commits.take() == []
    assert not outcome.status_written
    assert world.registry.writes == []
    assert outcome.requeue_after is None


def test_a_new_version_replaces_production_retires_the_old_one_and_settles(
    world: World, commits: Commits
) -> None:
    world.converge()
    model, spec = NAME, world.spec.rollout
    world.registry.aliases[(model, spec.candidate_alias)] = "2"  # a pipeline registered v2
    world.reconcile()
    world.make_available(world.one("Deployment", "serving", "2"))
    world.reconcile()
    world.pass_load_test(version="2")

    world.settle()  # steady: what the switch left behind is retired by now

    assert world.registry.resolve_alias(model, spec.production_alias) == "2"
    service = world.kube.get("Service", world.namespace, production_service_name(NAME))
    assert service is not None and service["spec"]["selector"]["kubellm.dev/version"] == "2"
    assert [
        d["metadata"]["labels"]["kubellm.dev/version"] for d in world.children("Deployment")
    ] == ["2"]
    assert world.kube.get("Service", world.namespace, candidate_service_name(NAME)) is None
    assert world.children("ConfigMap") == []
    assert world.status()["production"]["version"] == "2"
    assert world.status()["promotedVersions"] == ["1", "2"]
    world.operator.take()
    commits.take()
    world.registry.writes.clear()

    outcome = world.reconcile()

    assert world.operator.take() == []
    assert commits.take() == []
    assert not outcome.status_written
    assert world.registry.writes == []


@pytest.mark.parametrize(
    ("kind", "component"),
    [
        ("Service", "production"),
        ("Deployment", "serving"),
        ("HorizontalPodAutoscaler", "autoscaler"),
    ],
)
def test_a_deleted_child_is_recreated_on_the_next_reconcile(
    world: World, kind: str, component: str
) -> None:
    world.converge()
    before = world.one(kind, component)
    name = before["metadata"]["name"]
    world.kube.delete(kind, world.namespace, name)
    assert world.kube.get(kind, world.namespace, name) is None
    world.operator.take()

    world.reconcile()

    assert Write("create", kind, name) in world.operator.take()
    after = world.kube.get(kind, world.namespace, name)
    assert after is not None and after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"] == before["spec"] | (
        {"clusterIP": after["spec"]["clusterIP"], "clusterIPs": after["spec"]["clusterIPs"]}
        if kind == "Service"
        else {}
    )
    if kind == "Deployment":
        world.make_available(after)
    world.reconcile()
    assert world.condition("Ready")["status"] == "True"
    if kind == "Service":
        assert after["metadata"]["name"] == production_service_name(NAME)


def test_a_refused_write_lands_in_status_and_the_next_reconcile_creates_the_child(
    world: World, apiserver: ThreadedApiServer
) -> None:
    world.create_llm()
    apiserver.server.faults.add(
        verb="create", resource="jobs", user_agent="kubellm-operator", code=403, count=1
    )

    with pytest.raises(ChildrenRefused, match="403"):
        world.reconcile()

    assert world.children("Job") == []
    message = world.status()["message"]
    assert message.startswith("the API server refused: Job ") and "403" in message
    refused = [e for e in world.events() if e["reason"] == "ApplyRefused"]
    assert len(refused) == 1 and refused[0]["type"] == "Warning"
    assert world.operator.take().count(STATUS_WRITE) == 1

    world.reconcile()  # the server takes it now

    assert world.one("Job", "training")
    assert "refused" not in world.status()["message"]
    assert world.condition("Trained")["reason"] == "TrainingPending"


def _rollouts(verdict: str) -> float:
    value = REGISTRY.get_sample_value("kubellm_operator_rollouts_total", {"verdict": verdict})
    return value or 0.0


def test_each_promotion_is_counted_once_in_the_metrics(world: World) -> None:
    promoted, refused = _rollouts("promoted"), _rollouts("refused")
    world.converge()  # version 1: the pass after the promotion posts LoadTestPassed=Promoted
    assert _rollouts("promoted") == promoted + 1
    world.registry.aliases[(NAME, world.spec.rollout.candidate_alias)] = "2"
    world.reconcile()
    world.make_available(world.one("Deployment", "serving", "2"))
    world.reconcile()
    world.pass_load_test(version="2")

    world.settle()
    world.reconcile()

    assert world.status()["production"]["version"] == "2"
    assert _rollouts("promoted") == promoted + 2
    assert _rollouts("refused") == refused


def test_each_refusal_is_counted_once_in_the_metrics(world: World) -> None:
    promoted, refused = _rollouts("promoted"), _rollouts("refused")
    world.deploy_candidate()
    world.fail_load_test("p95 9000 ms > 5000 ms")

    for _ in range(4):
        world.reconcile()

    assert world.status()["refusedVersions"] == ["1"]
    assert _rollouts("refused") == refused + 1
    assert _rollouts("promoted") == promoted


def test_a_refusal_requeues_until_its_cleanup_is_done(world: World, commits: Commits) -> None:
    world.deploy_candidate()
    world.fail_load_test("p95 9000 ms > 5000 ms")

    refusal = world.reconcile()

    assert world.status()["refusedVersions"] == ["1"]
    assert refusal.requeue_after is not None  # its children and status still change
    for _ in range(3):  # the requeues the reconciler asks for, until it says steady
        world.operator.take()
        commits.take()
        outcome = world.reconcile()
        if outcome.requeue_after is None:
            break
    assert outcome.requeue_after is None
    assert world.children("ConfigMap") == [] and world.children("Deployment") == []
    world.operator.take()
    commits.take()

    after_steady = world.reconcile()  # steady means nothing is left for the next poll

    assert world.operator.take() == []
    assert commits.take() == []
    assert not after_steady.status_written


def test_keep_candidate_leaves_a_refused_candidate_running_past_the_refusal(world: World) -> None:
    world.manifest["spec"]["rollout"]["onFailure"] = "KeepCandidate"
    world.deploy_candidate()
    world.fail_load_test("p95 9000 ms > 5000 ms")

    for _ in range(3):  # the refusal, then the passes after it
        world.reconcile()

    assert world.status()["refusedVersions"] == ["1"]
    assert [d["metadata"]["name"] for d in world.children("Deployment")] == ["bot-v1"]
    assert world.kube.get("Service", world.namespace, candidate_service_name(NAME)) is not None
    assert world.condition("CandidateReady")["reason"] == "CandidateRefused"


def test_ready_stays_true_through_a_healthy_promotion(world: World) -> None:
    world.converge()
    before = {e["metadata"]["name"] for e in world.events()}
    world.registry.aliases[(NAME, world.spec.rollout.candidate_alias)] = "2"
    world.reconcile()
    world.make_available(world.one("Deployment", "serving", "2"))
    world.reconcile()
    world.pass_load_test(version="2")

    world.reconcile()  # the promotion: the production Service switches to version 2

    ready = world.condition("Ready")
    assert world.status()["production"]["version"] == "2"
    assert (ready["status"], ready["reason"]) == ("True", "ProductionServing")
    assert "version 2 serves" in ready["message"]
    service = world.kube.get("Service", world.namespace, production_service_name(NAME))
    assert service is not None and service["spec"]["selector"]["kubellm.dev/version"] == "2"
    world.settle()
    since = [e for e in world.events() if e["metadata"]["name"] not in before]
    assert [(e["reason"], e["message"]) for e in since if e["type"] == "Warning"] == []
    assert "Promoted" in [e["reason"] for e in since]


def test_a_production_that_is_not_available_is_still_reported_not_ready(world: World) -> None:
    world.converge()
    dep = world.one("Deployment", "serving", "1")
    world.kube.patch(  # its pods went away: nothing available
        "Deployment",
        world.namespace,
        dep["metadata"]["name"],
        {"status": {"readyReplicas": 0, "availableReplicas": 0}},
        subresource="status",
    )

    outcome = world.reconcile()

    ready = world.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ProductionStarting")
    assert outcome.requeue_after is not None
