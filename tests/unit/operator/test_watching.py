"""The post-promotion watch, planned pass by pass with no server: a promotion starts it and
keeps the previous release warm, each look judges production's live figures of its own
window, a breach rolls back by itself (alias, Service, routes, HPA, tag, history, withdrawn),
too few requests is not a breach, the window's end retires the previous release, and the
watch lives in status, so a fresh planner resumes the same window."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from kubellm.api import LLM
from kubellm.api.status import WatchStatus
from kubellm.api.timestamps import format_time
from kubellm.api.vocabulary import ConditionStatus, EventType, Phase, RollbackTrigger, WatchState
from kubellm.gateway.windows import ReleaseTraffic
from kubellm.loadtests.slo import Objectives
from kubellm.operator import sampling
from kubellm.operator.observed import LiveTraffic, Observed, RegistryState
from kubellm.operator.planning import ROLLBACK_ANNOTATION, Plan, Scale, plan
from kubellm.operator.planning.analysis import StepOutcome, judge_watch
from kubellm.operator.planning.watching import ROLLED_BACK_TAG, watch_since
from tests.unit.operator.test_canary_stages import PASSED_JOB, _routes, _traffic
from tests.unit.operator.test_plan import (
    CONFIG,
    NOW,
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

V1, V2 = "support-bot-v1", "support-bot-v2"
WATCH = {"window": "10m", "interval": "10s", "minRequests": 20}


def _watched_llm(
    status: dict[str, Any] | None = None, annotations: dict[str, str] | None = None, **watch: Any
) -> LLM:
    def mutate(obj: dict[str, Any]) -> None:
        obj["spec"]["rollout"]["postPromotion"] = {**WATCH, **watch}

    return _llm(
        status=_verified("1") if status is None else status, annotations=annotations, mutate=mutate
    )


def _promoting() -> Observed:
    """v2 passed its load test; v1 serves (its Deployment scaled up by the HPA)."""
    obs = _with_loadtest(_candidate_ready(_llm(), production="1"), PASSED_JOB)
    deployments = {**obs.deployments, V1: replace(_ready_dep(V1, "1"), desired_replicas=3)}
    return replace(obs, deployments=deployments)


def _after_promotion(live: LiveTraffic | None = None, *, alias: str = "2") -> Observed:
    """The world once the promotion was carried out: the Service selects v2."""
    obs = _promoting()
    services = {
        "support-bot": _svc("support-bot", "2", "127.96.0.5"),
        "support-bot-candidate": _svc("support-bot-candidate", "2", "127.96.0.9"),
    }
    registry = RegistryState(candidate="2", production=alias)
    return replace(obs, services=services, registry=registry, watch_live=live)


def _live(llm: LLM, now: datetime, traffic: ReleaseTraffic) -> LiveTraffic:
    """What the gateways answer for the window the operator asks for at ``now``."""
    since = watch_since(llm, now)
    assert since is not None
    return LiveTraffic(since=format_time(since), releases={"2": traffic}, answered=1)


def _promoted(**watch: Any) -> tuple[LLM, Plan]:
    llm = _watched_llm(**watch)
    return llm, plan(llm, _promoting(), CONFIG, NOW)


def _watch(p: Plan) -> WatchStatus:
    assert p.status.production is not None and p.status.production.watch is not None
    return p.status.production.watch


def _aliases(p: Plan) -> list[tuple[str | None, str]]:
    return [(a.alias, a.version) for a in p.registry if a.kind == "set_alias"]


def _selector_version(p: Plan) -> str:
    svc = next(m for m in p.apply if m["metadata"]["name"] == "support-bot")
    return str(svc["spec"]["selector"]["kubellm.dev/version"])


def _hpa_target(p: Plan) -> str:
    hpa = next(m for m in p.apply if m["kind"] == "HorizontalPodAutoscaler")
    return str(hpa["spec"]["scaleTargetRef"]["name"])


def _deleted(p: Plan) -> set[tuple[str, str]]:
    return {(d.kind, d.name) for d in p.delete}


def test_a_promotion_starts_the_watch_and_keeps_the_previous_release() -> None:
    _, p = _promoted()
    assert _aliases(p) == [("production", "2")]
    watch = _watch(p)
    assert (watch.version, watch.previous, watch.state) == ("2", "1", WatchState.WATCHING)
    assert watch.started_at == "2026-11-28T12:00:00Z"
    assert ("Deployment", V1) in _kinds(p) and ("Deployment", V1) not in _deleted(p)
    assert p.scale == []  # clients get drainDelay to move before v1 is scaled down
    assert _cond(p, "RolledBack") == (ConditionStatus.FALSE, "Watching")
    assert "WatchStarted" in [e.reason for e in p.events]
    assert p.status.stage == "Watching 0m/10m"
    assert p.requeue_after is not None and p.requeue_after <= 10.0


def test_without_post_promotion_the_previous_release_is_not_kept() -> None:
    llm = _llm(status=_verified("1"))
    p = plan(llm, _promoting(), CONFIG, NOW)
    assert p.status.production is not None and p.status.production.watch is None
    assert ("Deployment", V1) not in _kinds(p)
    assert "RolledBack" not in [c.type for c in p.status.conditions]
    later = plan(_carry(llm, p), _after_promotion(), CONFIG, NOW + timedelta(seconds=5))
    assert ("Deployment", V1) in _deleted(later)


def test_a_healthy_look_keeps_watching_with_the_previous_release_at_its_minimum() -> None:
    llm, first = _promoted()
    llm = _carry(llm, first)
    now = NOW + timedelta(minutes=4)
    p = plan(llm, _after_promotion(_live(llm, now, _traffic(100))), CONFIG, now)
    assert _aliases(p) == [] and p.rollback is None
    assert p.status.stage == "Watching 4m/10m" and p.status.phase is Phase.READY
    watch = _watch(p)
    assert watch.state is WatchState.WATCHING and watch.requests == 100
    assert watch.since == "2026-11-28T12:03:30Z"  # the last 30 s (3 intervals, floor 30 s)
    assert ("Deployment", V1) in _kinds(p) and ("Deployment", V1) not in _deleted(p)
    assert p.scale == [Scale(V1, 1)]  # from the HPA's 3 to spec.serving.replicas.min
    assert _routes(p) == [("2", "support-bot", 100)]
    assert p.requeue_after == 10.0


def test_a_breach_rolls_production_back_by_itself() -> None:
    llm, first = _promoted()
    llm = _carry(llm, first)
    now = NOW + timedelta(minutes=2)
    p = plan(llm, _after_promotion(_live(llm, now, _traffic(100, errors=30))), CONFIG, now)
    assert _aliases(p) == [("production", "1")]
    assert p.status.production is not None and p.status.production.version == "1"
    assert _selector_version(p) == "1" and _hpa_target(p) == V1
    assert _routes(p) == [("1", "support-bot", 100)]
    watch = _watch(p)
    assert (watch.state, watch.ended_at) == (WatchState.ROLLED_BACK, "2026-11-28T12:02:00Z")
    assert "error rate 30.00% (30 of 100) is above maxErrorRate 1.00%" in watch.reasons[0]
    tags = next(a.tags for a in p.registry if a.kind == "set_tags" and a.version == "2")
    figures = json.loads(tags[ROLLED_BACK_TAG])
    assert (figures["to"], figures["requests"], figures["errorRate"]) == ("1", 100, 0.3)
    release = p.status.history[0]
    assert (release.version, release.verdict, release.error_rate) == ("2", "rolledBack", 0.3)
    assert p.status.withdrawn_versions == ["2"]
    assert _cond(p, "RolledBack") == (ConditionStatus.TRUE, "PostPromotionBreach")
    rolled = [e for e in p.events if e.reason == "RolledBack"]
    assert rolled and all(e.type is EventType.WARNING for e in rolled)
    assert p.rollback is RollbackTrigger.WATCH
    assert p.status.stage is None

    # the version is not promoted again, though the candidate alias and its passed load
    # test still name it; v2 retires once production's Service left it
    switched = replace(
        _after_promotion(alias="1"),
        services={
            "support-bot": _svc("support-bot", "1", "127.96.0.5"),
            "support-bot-candidate": _svc("support-bot-candidate", "2", "127.96.0.9"),
        },
    )
    after = _carry(llm, p)
    later = plan(after, switched, CONFIG, now + timedelta(seconds=5))
    assert _aliases(later) == [] and later.rollback is None
    assert later.status.production is not None and later.status.production.version == "1"
    assert _cond(later, "CandidateReady") == (ConditionStatus.FALSE, "CandidateWithdrawn")
    assert _cond(later, "RolledBack") == (ConditionStatus.TRUE, "PostPromotionBreach")
    assert ("Deployment", V2) in _deleted(later)
    assert ("Deployment", V1) not in _deleted(later)


def test_too_few_requests_is_not_a_breach_and_the_window_end_retires_the_previous() -> None:
    llm, first = _promoted()
    llm = _carry(llm, first)
    now = NOW + timedelta(minutes=3)
    quiet = plan(llm, _after_promotion(_live(llm, now, _traffic(5, errors=5))), CONFIG, now)
    assert _aliases(quiet) == [] and quiet.rollback is None
    watch = _watch(quiet)
    assert watch.state is WatchState.WATCHING and watch.requests == 5
    assert "fewer than minRequests 20: not judged (not a breach)" in watch.reasons[0]

    llm = _carry(llm, quiet)
    end = NOW + timedelta(minutes=10, seconds=1)
    p = plan(llm, _after_promotion(_live(llm, end, _traffic(3))), CONFIG, end)
    assert _watch(p).state is WatchState.PASSED and _aliases(p) == []
    assert _cond(p, "RolledBack") == (ConditionStatus.FALSE, "WatchPassed")
    assert "WatchPassed" in [e.reason for e in p.events]
    assert p.status.stage is None
    assert ("Deployment", V1) not in _kinds(p) and ("Deployment", V1) in _deleted(p)
    # the record stays; no more looks are taken
    settled = plan(_carry(llm, p), _after_promotion(), CONFIG, end + timedelta(seconds=5))
    assert _watch(settled).state is WatchState.PASSED
    assert watch_since(_carry(llm, p), end) is None


def test_figures_from_before_the_promotion_are_not_judged() -> None:
    llm, first = _promoted()
    llm = _carry(llm, first)
    now = NOW + timedelta(seconds=20)
    early = LiveTraffic(since="2026-11-28T11:59:00Z", releases={"2": _traffic(100, errors=50)})
    p = plan(llm, _after_promotion(early), CONFIG, now)
    assert _aliases(p) == [] and _watch(p).state is WatchState.WATCHING
    assert "no gateway answered" in _watch(p).reasons[0]


def test_a_restarted_operator_resumes_the_same_window() -> None:
    llm, first = _promoted()
    restarted = _carry(llm, first)  # all a fresh operator has: the LLM with its status
    now = NOW + timedelta(seconds=20)
    assert watch_since(restarted, now) == NOW  # never from before the promotion
    later = NOW + timedelta(minutes=9)
    assert watch_since(restarted, later) == later - timedelta(seconds=30)
    p = plan(restarted, _after_promotion(_live(restarted, later, _traffic(50))), CONFIG, later)
    assert _watch(p).started_at == _watch(first).started_at
    assert p.status.stage == "Watching 9m/10m"


def test_a_short_window_counts_seconds_and_a_long_interval_looks_further_back() -> None:
    llm, first = _promoted(window="60s", interval="20s")
    llm = _carry(llm, first)
    assert first.status.stage == "Watching 0s/60s"
    now = NOW + timedelta(seconds=100)
    assert watch_since(llm, now) == NOW + timedelta(seconds=40)  # 3 x 20 s


def test_a_manual_rollback_during_the_watch_ends_it() -> None:
    llm, first = _promoted()
    status = first.status.dump()
    llm = _watched_llm(status=status, annotations={ROLLBACK_ANNOTATION: "1"})
    now = NOW + timedelta(minutes=1)
    p = plan(llm, _after_promotion(_live(llm, now, _traffic(100))), CONFIG, now)
    assert _aliases(p) == [("production", "1")]
    assert p.status.production is not None and p.status.production.watch is None
    assert p.rollback is RollbackTrigger.ANNOTATION
    assert p.status.stage is None


def test_a_look_judges_the_objectives_without_failing_closed() -> None:
    objectives = Objectives(max_error_rate=0.01, p95_latency_ms=500.0)
    few = judge_watch(_traffic(5, errors=5), objectives, min_requests=20)
    assert few.outcome is StepOutcome.WAITING and few.reasons == ()
    assert judge_watch(None, objectives, min_requests=1).outcome is StepOutcome.WAITING
    good = judge_watch(_traffic(40), objectives, min_requests=20)
    assert good.outcome is StepOutcome.PASSED and good.candidate.requests == 40
    slow = judge_watch(_traffic(40, latency_ms=2000.0), objectives, min_requests=20)
    assert slow.outcome is StepOutcome.FAILED
    assert any("p95 latency" in r and "p95LatencyMs 500" in r for r in slow.reasons)


def test_the_gateways_are_read_only_for_a_watch_in_progress(monkeypatch: Any) -> None:
    asked: list[str] = []
    monkeypatch.setattr(sampling, "_addresses", lambda url: ["127.0.0.1"])
    monkeypatch.setattr(sampling, "_ask", lambda url: asked.append(url) or {"2": _traffic(7)})
    gateway = replace(CONFIG, gateway_demand_url="http://gw.kubellm-system:9000/demand")
    llm, first = _promoted()
    watched = _carry(llm, first)
    later = NOW + timedelta(minutes=2)
    assert sampling.read_watch_live(CONFIG, watched, later) is None  # no gateway configured
    assert sampling.read_watch_live(gateway, _watched_llm(), later) is None  # no watch
    live = sampling.read_watch_live(gateway, watched, later)
    assert live is not None and live.since == "2026-11-28T12:01:30Z"
    assert live.releases["2"].requests == 7
    since = (later - timedelta(seconds=30)).timestamp()
    assert asked == [f"http://127.0.0.1:9000/traffic?llm=default%2Fsupport-bot&since={since:.3f}"]
