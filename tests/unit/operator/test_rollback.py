"""Issue 12, item 3: a rollback stays rolled back.

Moving `production` back to v1 while `candidate` still named v2 (whose passed load-test Job
was still there) made the operator re-promote v2 at once. Now a rollback is a command, the
annotation `kubellm.dev/rollback-to`, and the version production left is not promoted
again without a new trigger.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from kubellm.api.status import ConditionStatus
from kubellm.operator.observed import DeploymentState, JobState, Observed, RegistryState
from kubellm.operator.planning import RETRY_ANNOTATION, ROLLBACK_ANNOTATION, Plan, plan
from kubellm.operator.planning.trust import ROLLED_BACK_TAG
from tests.unit.operator.test_plan import (
    CONFIG,
    NOW,
    PASS,
    _carry,
    _cond,
    _done_training,
    _kinds,
    _llm,
    _ready_dep,
    _svc,
    _train_name,
)

V1, V2 = "support-bot-v1", "support-bot-v2"
PASSED_V2 = JobState(
    name="support-bot-loadtest-v2",
    component="loadtest",
    version="2",
    succeeded=1,
    complete=True,
    message=PASS,
    exit_code=0,
)


def _status_after_v2_promoted(**more: Any) -> dict[str, Any]:
    return {
        "production": {"version": "2", "promotedAt": "2026-11-28T11:00:00Z"},
        "promotedVersions": ["1", "2"],
        **more,
    }


def _world(
    alias: str, *, v1: DeploymentState | None = None, serving: str = "2", **jobs: JobState
) -> Observed:
    """v2 in production (candidate alias still on it, its passed load test still there)."""
    deployments = {V2: _ready_dep(V2, "2")}
    if v1 is not None:
        deployments[V1] = v1
    return Observed(
        jobs={"support-bot-loadtest-v2": PASSED_V2, **jobs},
        deployments=deployments,
        services={
            "support-bot": _svc("support-bot", serving, "127.96.0.5"),
            "support-bot-candidate": _svc("support-bot-candidate", "2", "127.96.0.9"),
        },
        registry=RegistryState(candidate="2", production=alias),
    )


def _aliases(p: Plan) -> list[tuple[str | None, str]]:
    return [(a.alias, a.version) for a in p.registry if a.kind == "set_alias"]


def _promotions(p: Plan) -> list[str]:
    """Promotion Events (not the Event of the LoadTestPassed condition's transition)."""
    return [e.message for e in p.events if "passed the load test and takes traffic" in e.message]


def _service_version(p: Plan) -> str:
    svc = next(m for m in p.apply if m["metadata"]["name"] == "support-bot")
    return str(svc["spec"]["selector"]["kubellm.dev/version"])


def _spec_without_training(llm: Any) -> Any:
    return llm.model_copy(update={"spec": llm.spec.model_copy(update={"training": None})})


def test_alias_moved_back_by_hand_does_not_make_the_operator_promote_the_candidate() -> None:
    # The reproduction: before the fix this plan moved `production` to 2 again at once.
    llm = _spec_without_training(_llm(status=_status_after_v2_promoted()))
    p = plan(llm, _world(alias="1"), CONFIG, NOW)
    assert ("production", "2") not in _aliases(p)
    assert _promotions(p) == []
    drift = next(c for c in p.status.conditions if c.type == "ProductionAliasDrift")
    assert drift.status is ConditionStatus.TRUE
    assert f"{ROLLBACK_ANNOTATION}=1" in drift.message  # says how to really roll back


def test_rollback_annotation_moves_production_back_and_keeps_it_there() -> None:
    llm = _spec_without_training(
        _llm(status=_status_after_v2_promoted(), annotations={ROLLBACK_ANNOTATION: "1"})
    )
    first = plan(llm, _world(alias="2"), CONFIG, NOW)
    assert _aliases(first) == [("production", "1")]
    assert first.status.production is not None and first.status.production.version == "1"
    assert first.status.rollback is not None
    assert (first.status.rollback.state, first.status.rollback.from_version) == ("Done", "2")
    assert first.status.withdrawn_versions == ["2"]
    assert "RolledBack" in [e.reason for e in first.events]
    # v1 was retired: it starts again, and v2 keeps the traffic until v1 is available
    assert ("Deployment", V1) in _kinds(first)
    assert _service_version(first) == "2"
    assert not any(d.name == V2 for d in first.delete)
    assert "version 2 serves meanwhile" in next(
        c.message for c in first.status.conditions if c.type == "Ready"
    )

    # v1 is up: traffic switches; v2, still the candidate with a passed load test, stays out
    llm2 = _carry(llm, first)
    up = _world(alias="1", v1=_ready_dep(V1, "1"))
    second = plan(llm2, up, CONFIG, NOW + timedelta(seconds=1))
    assert _aliases(second) == []
    assert _service_version(second) == "1"
    assert _promotions(second) == []
    assert _cond(second, "CandidateReady") == (ConditionStatus.FALSE, "CandidateWithdrawn")
    assert _cond(second, "ProductionAliasDrift")[0] is ConditionStatus.FALSE
    switched = _world(alias="1", v1=_ready_dep(V1, "1"), serving="1")
    later = plan(_carry(llm2, second), switched, CONFIG, NOW + timedelta(seconds=10))
    assert ("Deployment", V2) in {(d.kind, d.name) for d in later.delete}
    assert _aliases(later) == [] and later.status.production is not None
    assert later.status.production.version == "1"
    assert _cond(later, "Ready") == (ConditionStatus.TRUE, "ProductionServing")


def test_a_request_is_handled_once_and_a_new_promotion_is_not_undone() -> None:
    llm = _llm(
        status=_status_after_v2_promoted(
            promotedVersions=["1", "2", "3"],
            production={"version": "3"},
            rollback={
                "request": "1",
                "version": "1",
                "state": "Done",
                "at": "2026-11-27T00:00:00Z",
            },
        ),
        annotations={ROLLBACK_ANNOTATION: "1"},
    )
    obs = Observed(
        deployments={"support-bot-v3": _ready_dep("support-bot-v3", "3")},
        services={"support-bot": _svc("support-bot", "3", "127.96.0.5")},
        registry=RegistryState(candidate="3", production="3"),
        jobs={_train_name(llm): _done_training(llm, "3")},
    )
    p = plan(llm, obs, CONFIG, NOW)
    assert _aliases(p) == []
    assert p.status.production is not None and p.status.production.version == "3"
    # the same version again, as a new request
    again = llm.model_copy(update={"annotations": {ROLLBACK_ANNOTATION: "1@second-time"}})
    p = plan(again, obs, CONFIG, NOW)
    assert _aliases(p) == [("production", "1")]


def test_rollback_to_a_version_the_operator_never_promoted_is_refused() -> None:
    llm = _spec_without_training(
        _llm(status=_status_after_v2_promoted(), annotations={ROLLBACK_ANNOTATION: "7"})
    )
    p = plan(llm, _world(alias="2"), CONFIG, NOW)
    assert _aliases(p) == []
    assert p.status.production is not None and p.status.production.version == "2"
    assert p.status.rollback is not None and p.status.rollback.state == "Refused"
    assert "never promoted" in (p.status.rollback.message or "")
    refused = [e for e in p.events if e.reason == "RollbackRefused"]
    assert len(refused) == 1 and refused[0].type == "Warning"
    # not reported again on the next pass
    assert "RollbackRefused" not in [
        e.reason for e in plan(_carry(llm, p), _world(alias="2"), CONFIG, NOW).events
    ]


def test_retry_annotation_is_the_new_trigger_for_a_withdrawn_version() -> None:
    status = _status_after_v2_promoted(
        production={"version": "1"},
        withdrawnVersions=["2"],
        rollback={"request": "1", "version": "1", "state": "Done", "at": "2026-11-28T11:30:00Z"},
    )
    annotations = {ROLLBACK_ANNOTATION: "1", RETRY_ANNOTATION: "try-2-again"}
    llm = _spec_without_training(_llm(status=status, annotations=annotations))
    p = plan(llm, _world(alias="1", v1=_ready_dep(V1, "1"), serving="1"), CONFIG, NOW)
    jobs = [n for k, n in _kinds(p) if k == "Job"]
    assert len(jobs) == 1 and jobs[0].startswith("support-bot-loadtest-v2-")  # tested again
    assert _aliases(p) == []


def test_a_requested_rollback_says_so_like_the_watch_does() -> None:
    # `kubectl wait --for=condition=RolledBack` works for both triggers
    llm = _spec_without_training(
        _llm(status=_status_after_v2_promoted(), annotations={ROLLBACK_ANNOTATION: "1"})
    )
    first = plan(llm, _world(alias="2"), CONFIG, NOW)
    assert _cond(first, "RolledBack") == (ConditionStatus.TRUE, "RollbackRequested")
    message = next(c.message for c in first.status.conditions if c.type == "RolledBack")
    assert "from version 2 to version 1" in message and f"{ROLLBACK_ANNOTATION}=1" in message
    (tags,) = [a.tags for a in first.registry if a.kind == "set_tags"]
    assert [a.version for a in first.registry if a.kind == "set_tags"] == ["2"]
    figures = json.loads(tags[ROLLED_BACK_TAG])
    assert (figures["to"], figures["trigger"], figures["retryToken"]) == ("1", "annotation", "")
    # the request is handled once: the condition stays, no Event is posted again
    second = plan(_carry(llm, first), _world(alias="1"), CONFIG, NOW + timedelta(seconds=1))
    assert _cond(second, "RolledBack") == (ConditionStatus.TRUE, "RollbackRequested")
    assert not [e for e in second.events if e.reason in ("RolledBack", "RollbackRequested")]
    assert not [a for a in second.registry if a.kind == "set_tags"]


def test_a_refused_or_idle_rollback_request_rolls_nothing_back() -> None:
    for request in ("7", "2"):  # never promoted; already production
        llm = _spec_without_training(
            _llm(status=_status_after_v2_promoted(), annotations={ROLLBACK_ANNOTATION: request})
        )
        p = plan(llm, _world(alias="2"), CONFIG, NOW)
        assert "RolledBack" not in [c.type for c in p.status.conditions], request
        assert not [a for a in p.registry if a.kind == "set_tags"], request
