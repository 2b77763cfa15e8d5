"""Issue 12, item 2: only versions the operator promoted itself are served.

Whoever could move the registry's production alias used to decide what served (and the
operator wrote `LoadTestPassed=True "version N passed the gate"` for a version no load test
had seen). Now an alias moved outside the operator is reported and not followed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kubellm.api.status import ConditionStatus
from kubellm.operator.observed import JobState, Observed, RegistryState
from kubellm.operator.planning import plan
from kubellm.operator.planning.trust import (
    PROMOTED_BY_TAG,
    PROMOTION_SIGNATURE_TAG,
    promotion_signature,
)
from tests.unit.operator.test_plan import (
    CONFIG,
    NOW,
    PASS,
    _candidate_ready,
    _carry,
    _cond,
    _kinds,
    _llm,
    _ready_dep,
    _svc,
    _verified,
    _with_loadtest,
)

KEY = "operator-only-promotion-key"
KEYED = replace(CONFIG, promotion_key=KEY)


def _message(p: Any, type_: str) -> str:
    return str(next(c.message for c in p.status.conditions if c.type == type_))


def _registry_only(**status: Any) -> Any:
    return _llm(
        "examples/registry-rollout.yaml",
        status=status or None,
    )


def _serving(name: str, version: str, alias: str, **tags: str) -> Observed:
    return Observed(
        deployments={f"{name}-v{version}": _ready_dep(f"{name}-v{version}", version)},
        services={name: _svc(name, version, "127.96.0.7")},
        hpas={name: None},
        registry=RegistryState(candidate=version, production=alias, production_tags=tags or {}),
    )


def _production_service_version(p: Any, name: str) -> str | None:
    for m in p.apply:
        if m["kind"] == "Service" and m["metadata"]["name"] == name:
            return str(m["spec"]["selector"]["kubellm.dev/version"])
    return None


def test_alias_moved_by_someone_else_is_not_served_and_raises_drift() -> None:
    llm = _registry_only(**_verified("5"))
    name = llm.name
    obs = _serving(name, "5", alias="9")  # a training pod's credentials moved production
    p = plan(llm, obs, CONFIG, NOW)
    assert _production_service_version(p, name) == "5"
    assert (("Deployment", f"{name}-v9")) not in _kinds(p)
    assert p.status.production is not None and p.status.production.version == "5"
    assert _cond(p, "ProductionAliasDrift") == (ConditionStatus.TRUE, "AliasMovedOutsideOperator")
    assert "version 9" in _message(p, "ProductionAliasDrift")
    drift = [e for e in p.events if e.reason == "AliasMovedOutsideOperator"]
    assert len(drift) == 1 and drift[0].type == "Warning"
    assert not any(a.kind == "set_alias" for a in p.registry)
    assert "9" not in _message(p, "LoadTestPassed")
    # still reported on the next pass, but the Event is not repeated
    again = plan(_carry(llm, p), obs, CONFIG, NOW)
    assert _cond(again, "ProductionAliasDrift")[0] is ConditionStatus.TRUE
    assert not [e for e in again.events if e.reason == "AliasMovedOutsideOperator"]
    # moved once more: news again
    moved = plan(_carry(llm, p), _serving(name, "5", alias="10"), CONFIG, NOW)
    assert [e.type for e in moved.events if e.reason == "AliasMovedOutsideOperator"] == ["Warning"]


def test_unverified_version_behind_both_aliases_goes_through_the_gate() -> None:
    # The reproduction: candidate and production both name 7, nothing ever tested it.
    # Before the fix the operator served 7 and wrote "version 7 passed the gate".
    llm = _registry_only()
    name = llm.name
    dep = f"{name}-v7"
    obs = Observed(
        deployments={dep: _ready_dep(dep, "7")},
        services={f"{name}-candidate": _svc(f"{name}-candidate", "7", "127.96.0.9")},
        registry=RegistryState(candidate="7", production="7"),
    )
    p = plan(llm, obs, CONFIG, NOW)
    assert _cond(p, "LoadTestPassed") != (ConditionStatus.TRUE, "Promoted")
    assert _cond(p, "Ready")[0] is ConditionStatus.FALSE
    assert _production_service_version(p, name) is None
    assert ("Job", f"{name}-loadtest-v7") in _kinds(p)
    assert p.status.production is None
    assert _cond(p, "ProductionAliasDrift")[0] is ConditionStatus.TRUE


def test_promotion_is_recorded_in_status_and_in_a_signed_registry_tag() -> None:
    llm = _llm(status=_verified("1"))
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
    p = plan(llm, obs, KEYED, NOW)
    tags = next(a.tags for a in p.registry if a.kind == "set_tags")
    assert tags[PROMOTED_BY_TAG] == "uid-1"
    assert tags[PROMOTION_SIGNATURE_TAG] == promotion_signature(KEY, llm, "2")
    assert p.status.promoted_versions == ["1", "2"]
    # the alias the operator moves itself is no drift
    assert _cond(p, "ProductionAliasDrift") == (ConditionStatus.FALSE, "AliasInSync")
    unkeyed = plan(llm, obs, CONFIG, NOW)
    tags = next(a.tags for a in unkeyed.registry if a.kind == "set_tags")
    assert PROMOTION_SIGNATURE_TAG not in tags


def test_lost_status_trusts_only_a_tag_signed_with_the_operators_key() -> None:
    llm = _registry_only()  # re-created: no status
    name = llm.name
    good = {
        PROMOTED_BY_TAG: "old-uid",
        PROMOTION_SIGNATURE_TAG: promotion_signature(KEY, llm, "5"),
    }
    p = plan(llm, _serving(name, "5", alias="5", **good), KEYED, NOW)
    assert _production_service_version(p, name) == "5"
    assert _cond(p, "Ready")[0] is ConditionStatus.TRUE
    assert p.status.promoted_versions == ["5"]
    # the signature of another version, no key, or a bare promotedBy tag: not trusted
    forged = {**good, PROMOTION_SIGNATURE_TAG: promotion_signature(KEY, llm, "4")}
    for tags, config in (
        (forged, KEYED),
        (good, CONFIG),
        ({PROMOTED_BY_TAG: "uid-1"}, KEYED),
        ({PROMOTION_SIGNATURE_TAG: promotion_signature("guessed", llm, "5")}, KEYED),
    ):
        p = plan(llm, _serving(name, "5", alias="5", **tags), config, NOW)
        assert _production_service_version(p, name) is None, (tags, config.promotion_key)
        assert p.status.production is None


def test_versions_promoted_before_the_upgrade_are_trusted_from_history() -> None:
    history = [{"version": "5", "verdict": "promoted", "at": "2026-11-01T00:00:00Z"}]
    llm = _registry_only(production={"version": "5"}, history=history)
    p = plan(llm, _serving(llm.name, "5", alias="5"), CONFIG, NOW)
    assert _production_service_version(p, llm.name) == "5"
    assert p.status.promoted_versions == ["5"]


def _pod(p: Any, kind: str, name_part: str) -> dict[str, Any]:
    obj = next(m for m in p.apply if m["kind"] == kind and name_part in m["metadata"]["name"])
    return dict(obj["spec"]["template"]["spec"])


def _secrets(container: dict[str, Any]) -> list[str]:
    names = [e["secretRef"]["name"] for e in container.get("envFrom") or []]
    names += [
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in container.get("env") or []
        if "secretKeyRef" in (e.get("valueFrom") or {})
    ]
    return names


def _mlflow(**secrets: str) -> Any:
    def mutate(o: dict[str, Any]) -> None:
        o["spec"]["mlflow"] = {"credentialsSecret": "mlflow-all", **secrets}

    return mutate


def test_credentials_reach_only_the_containers_that_need_them() -> None:
    narrow = _mlflow(
        trainingCredentialsSecret="mlflow-train",
        modelReaderCredentialsSecret="mlflow-read",
        loadTestCredentialsSecret="mlflow-loadtest",
    )
    for mutate, expected in (
        (_mlflow(), ("mlflow-all", "mlflow-all", "mlflow-all")),
        (narrow, ("mlflow-train", "mlflow-read", "mlflow-loadtest")),
    ):
        llm = _llm(mutate=mutate)
        train = _pod(plan(llm, Observed(), CONFIG, NOW), "Job", "-train-")
        p = plan(llm, _candidate_ready(llm), CONFIG, NOW)
        serving = _pod(p, "Deployment", "-v2")
        loadtest = _pod(p, "Job", "-loadtest-")
        assert _secrets(train["containers"][0]) == [expected[0]]
        assert _secrets(serving["initContainers"][0]) == [expected[1]]
        assert _secrets(serving["containers"][0]) == []
        assert _secrets(loadtest["containers"][0]) == [expected[2]]


def test_vllm_server_container_never_holds_registry_credentials() -> None:
    def mutate(o: dict[str, Any]) -> None:
        _mlflow()(o)
        o["spec"]["serving"]["engine"] = {"name": "vllm"}

    llm = _llm(mutate=mutate)
    pod = _pod(plan(llm, _candidate_ready(llm), CONFIG, NOW), "Deployment", "-v2")
    (server,) = pod["containers"]
    assert server["image"] == CONFIG.vllm_image and _secrets(server) == []
    assert not any("MLFLOW_TRACKING_PASSWORD" in str(e) for e in server.get("env") or [])
    assert _secrets(pod["initContainers"][0]) == ["mlflow-all"]
