"""Scale to zero: the operator switches a release between 0 and the HPA's range, from the
demand the gateway reports, and tells the gateway where to route (status.serving)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kubellm.api import LLM
from kubellm.api.status import ConditionStatus, LLMStatus, Phase
from kubellm.gateway.demand import LLMDemand
from kubellm.operator.builders import build_serving_deployment
from kubellm.operator.observed import DeploymentState, Observed, RegistryState
from kubellm.operator.planning import Plan, Scale, plan
from tests.unit.operator.test_plan import CONFIG, NOW, _cond, _llm, _ready_dep, _svc, _verified


def _zero_llm(status: dict[str, Any] | None = None, after: str = "10m") -> LLM:
    def mutate(obj: dict[str, Any]) -> None:
        obj["spec"]["serving"]["replicas"] = {"min": 0, "max": 3}
        obj["spec"]["serving"]["scaleToZeroAfter"] = after

    return _llm("examples/registry-rollout.yaml", status=status or _verified("5"), mutate=mutate)


def _observed(llm: LLM, dep: DeploymentState, demand: LLMDemand | None, hpa: bool = True):
    name = llm.name
    return Observed(
        deployments={dep.name: dep},
        services={name: _svc(name, "5", "127.96.0.7")},
        hpas={name: None} if hpa else {},
        registry=RegistryState(candidate="5", production="5"),
        demand=demand,
    )


def _serving(llm: LLM) -> DeploymentState:
    return replace(_ready_dep(f"{llm.name}-v5", "5"), desired_replicas=1)


def _at_zero(llm: LLM) -> DeploymentState:
    return DeploymentState(name=f"{llm.name}-v5", version="5", desired_replicas=0)


def _hpa(p: Plan) -> dict[str, Any] | None:
    return next((m for m in p.apply if m["kind"] == "HorizontalPodAutoscaler"), None)


def _carry(llm: LLM, p: Plan) -> LLM:
    return llm.model_copy(update={"status": LLMStatus.model_validate(p.status.dump())})


def test_idle_release_is_scaled_to_zero_and_its_hpa_removed() -> None:
    llm = _zero_llm()
    idle = LLMDemand(idle_seconds=601.0)
    p = plan(llm, _observed(llm, _serving(llm), idle), CONFIG, NOW)
    assert p.scale == [Scale(f"{llm.name}-v5", 0)]
    assert _hpa(p) is None
    assert [(d.kind, d.name) for d in p.delete] == [("HorizontalPodAutoscaler", llm.name)]
    assert "ScaledToZero" in [e.reason for e in p.events]
    assert p.status.serving is not None and p.status.serving.scaled_to_zero


def test_release_with_recent_requests_keeps_its_hpa_at_one_or_more() -> None:
    llm = _zero_llm()
    p = plan(llm, _observed(llm, _serving(llm), LLMDemand(idle_seconds=30.0)), CONFIG, NOW)
    assert p.scale == [] and p.delete == []
    hpa = _hpa(p)
    assert hpa is not None and hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 3
    assert p.status.serving is not None and not p.status.serving.scaled_to_zero


def test_requests_in_flight_or_held_keep_the_release_up_however_long_idle() -> None:
    llm = _zero_llm()
    for demand in (LLMDemand(inflight=1, idle_seconds=9999), LLMDemand(held=2, idle_seconds=9999)):
        p = plan(llm, _observed(llm, _serving(llm), demand), CONFIG, NOW)
        assert p.scale == [] and _hpa(p) is not None


def test_without_a_demand_report_nothing_is_scaled_to_zero() -> None:
    llm = _zero_llm()
    p = plan(llm, _observed(llm, _serving(llm), None), CONFIG, NOW)
    assert p.scale == [] and _hpa(p) is not None


def test_idle_release_is_checked_again_when_its_quiet_time_runs_out() -> None:
    llm = _zero_llm(after="90s")
    p = plan(llm, _observed(llm, _serving(llm), LLMDemand(idle_seconds=80.0)), CONFIG, NOW)
    assert p.scale == []
    assert p.requeue_after is not None and p.requeue_after <= 10.0


def test_release_at_zero_stays_there_and_ready_while_nobody_asks() -> None:
    llm = _zero_llm()
    p = plan(
        llm, _observed(llm, _at_zero(llm), LLMDemand(idle_seconds=5.0), hpa=False), CONFIG, NOW
    )
    assert p.scale == [] and _hpa(p) is None and p.delete == []
    assert _cond(p, "Ready") == (ConditionStatus.TRUE, "ScaledToZero")
    assert p.status.phase is Phase.READY
    assert p.requeue_after is None  # nothing to wait for: the demand poll wakes it
    serving = p.status.serving
    assert serving is not None and serving.scaled_to_zero and serving.replicas == 0


def test_a_held_request_starts_the_release_from_zero_with_its_hpa() -> None:
    llm = _zero_llm()
    held = LLMDemand(held=16, holding_seconds=0.2)
    p = plan(llm, _observed(llm, _at_zero(llm), held, hpa=False), CONFIG, NOW)
    assert p.scale == [Scale(f"{llm.name}-v5", 1)]
    hpa = _hpa(p)
    assert hpa is not None and hpa["spec"]["minReplicas"] == 1
    assert "16 request(s) held" in next(
        e.message for e in p.events if e.reason == "ScalingFromZero"
    )
    assert _cond(p, "Ready") == (ConditionStatus.TRUE, "ScaledToZero")
    # next pass: the Deployment asks for 1 and its pod is not ready yet: still "from zero"
    starting = DeploymentState(name=f"{llm.name}-v5", version="5", desired_replicas=1)
    nxt = plan(_carry(llm, p), _observed(llm, starting, held), CONFIG, NOW)
    assert nxt.scale == [] and _hpa(nxt) is not None
    assert nxt.status.serving is not None and nxt.status.serving.scaled_to_zero
    assert _cond(nxt, "Ready") == (ConditionStatus.TRUE, "ScaledToZero")


def test_unknown_demand_starts_a_release_at_zero() -> None:
    llm = _zero_llm()
    p = plan(llm, _observed(llm, _at_zero(llm), None, hpa=False), CONFIG, NOW)
    assert p.scale == [Scale(f"{llm.name}-v5", 1)]


def test_turning_scale_to_zero_off_starts_the_release_again() -> None:
    llm = _llm("examples/registry-rollout.yaml", status=_verified("5"))
    p = plan(
        llm, _observed(llm, _at_zero(llm), LLMDemand(idle_seconds=9999), hpa=False), CONFIG, NOW
    )
    assert p.scale == [Scale(f"{llm.name}-v5", max(1, llm.spec.serving.replicas.min))]


def test_cold_start_measured_by_the_gateway_lands_in_status() -> None:
    llm = _zero_llm()
    demand = LLMDemand(
        inflight=3, last_cold_start_seconds=7.25, last_cold_start_at="2026-11-28T11:59:00Z"
    )
    p = plan(llm, _observed(llm, _serving(llm), demand), CONFIG, NOW)
    serving = p.status.serving
    assert serving is not None
    assert (serving.last_cold_start_seconds, serving.replicas) == (7.25, 1)
    # a later report without one keeps the last figure
    later = plan(_carry(llm, p), _observed(llm, _serving(llm), LLMDemand(inflight=1)), CONFIG, NOW)
    assert later.status.serving is not None and later.status.serving.last_cold_start_seconds == 7.25


def test_routes_send_everything_to_the_production_service() -> None:
    llm = _zero_llm()
    p = plan(llm, _observed(llm, _serving(llm), LLMDemand()), CONFIG, NOW)
    assert p.status.serving is not None
    routes = [(r.version, r.service, r.weight) for r in p.status.serving.routes]
    assert routes == [("5", llm.name, 100)]
    wire = p.status.dump()["serving"]["routes"]
    assert wire == [{"version": "5", "service": llm.name, "weight": 100}]


def test_a_candidate_of_a_scale_to_zero_llm_starts_with_one_replica() -> None:
    llm = _zero_llm()
    obs = replace(
        _observed(llm, _serving(llm), LLMDemand(idle_seconds=1.0)),
        registry=RegistryState(candidate="6", production="5"),
    )
    p = plan(llm, obs, CONFIG, NOW)
    dep = next(m for m in p.apply if m["metadata"]["name"] == f"{llm.name}-v6")
    assert dep["spec"]["replicas"] == 1


def test_a_release_starting_from_zero_is_probed_every_second_and_dropped_after_four() -> None:
    # held requests go out as soon as the gateway sees the pod ready: the probe period is
    # the wait after the server is up; the unready window stays 4 s (drains, restarts)
    dep = build_serving_deployment(_zero_llm(), "5", CONFIG, replicas=1)
    probe = dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["periodSeconds"] == 1
    assert probe["periodSeconds"] * probe["failureThreshold"] == 4
