"""The canary stages, planned step by step with no server: the first step starts when the
load test passed, each step is judged on live figures of its own window, a passed step
starts the next, the last promotes, a failed one sends all traffic back and refuses; the
step and its start live in status, so a fresh planner resumes where the last one was."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from kubellm.api import LLM
from kubellm.api.status import LLMStatus
from kubellm.api.vocabulary import ConditionStatus, Phase
from kubellm.gateway.windows import ReleaseTraffic, bucket_of
from kubellm.operator.observed import JobState, LiveTraffic, Observed
from kubellm.operator.planning import Plan, plan
from tests.unit.operator.test_plan import (
    CONFIG,
    NOW,
    PASS,
    _candidate_ready,
    _cond,
    _llm,
    _verified,
    _with_loadtest,
)

PASSED_JOB = JobState(
    name="support-bot-loadtest-v2",
    component="loadtest",
    version="2",
    succeeded=1,
    complete=True,
    message=PASS,
    exit_code=0,
)


def _canary_llm(status: dict[str, Any] | None = None, **canary: Any) -> LLM:
    def mutate(obj: dict[str, Any]) -> None:
        obj["spec"]["rollout"]["strategy"] = "Canary"
        obj["spec"]["rollout"]["canary"] = {
            "steps": [{"weight": 10, "pause": "1m"}, {"weight": 50, "pause": "2m"}],
            "minRequests": 20,
            "interval": "10s",
            **canary,
        }

    return _llm(status=_verified("1") if status is None else status, mutate=mutate)


def _observed(live: LiveTraffic | None = None) -> Observed:
    obs = _with_loadtest(_candidate_ready(_llm(), production="1"), PASSED_JOB)
    return replace(obs, live=live)


def _traffic(requests: int, errors: int = 0, latency_ms: float = 100.0) -> ReleaseTraffic:
    return ReleaseTraffic(
        requests=requests,
        errors=errors,
        tokens=requests * 10,
        seconds=requests * latency_ms / 1000,
        latency={bucket_of(latency_ms / 1000): requests},
        ttfb={bucket_of(0.02): requests},
    )


def _live(p: Plan, candidate: ReleaseTraffic, production: ReleaseTraffic) -> LiveTraffic:
    """What the gateways answer for the window the plan's status says."""
    assert p.status.candidate is not None and p.status.candidate.canary is not None
    since = p.status.candidate.canary.step_started_at
    return LiveTraffic(since=since, releases={"2": candidate, "1": production}, answered=1)


def _next(llm: LLM, p: Plan) -> LLM:
    return llm.model_copy(update={"status": LLMStatus.model_validate(p.status.dump())})


def _routes(p: Plan) -> list[tuple[str, str, int]]:
    assert p.status.serving is not None
    return [(r.version, r.service, r.weight) for r in p.status.serving.routes]


def _aliases(p: Plan) -> list[tuple[str | None, str]]:
    return [(a.alias, a.version) for a in p.registry if a.kind == "set_alias"]


def test_a_passed_load_test_starts_the_first_step_instead_of_promoting() -> None:
    llm = _canary_llm()
    p = plan(llm, _observed(), CONFIG, NOW)
    assert _aliases(p) == []
    assert _routes(p) == [("1", "support-bot", 90), ("2", "support-bot-candidate", 10)]
    assert p.status.phase is Phase.CANARY and p.status.stage == "Canary 10%"
    canary = p.status.candidate.canary if p.status.candidate else None
    assert canary is not None and (canary.step, canary.weight) == (1, 10)
    assert canary.step_started_at == "2026-11-28T12:00:00Z"
    assert _cond(p, "LoadTestPassed") == (ConditionStatus.UNKNOWN, "CanaryRunning")
    assert "CanaryStepStarted" in [e.reason for e in p.events]
    assert p.requeue_after is not None and p.requeue_after <= 10.0


def test_a_step_waits_for_its_pause_and_records_its_running_figures() -> None:
    llm = _canary_llm()
    first = plan(llm, _observed(), CONFIG, NOW)
    live = _live(first, _traffic(30), _traffic(270))
    p = plan(_next(llm, first), _observed(live), CONFIG, NOW + timedelta(seconds=30))
    assert p.status.stage == "Canary 10%" and _aliases(p) == []
    canary = p.status.candidate.canary if p.status.candidate else None
    assert canary is not None and canary.step == 1
    record = canary.steps[0]
    assert (record.outcome, record.requests, record.production_requests) == ("Running", 30, 270)
    assert record.ended_at is None
    # back at the next interval, or when the pause ends if sooner
    assert p.requeue_after == 10.0
    assert "CanaryStepStarted" not in [e.reason for e in p.events]


def test_a_passed_step_starts_the_next_with_its_weight_and_a_new_window() -> None:
    llm = _canary_llm()
    first = plan(llm, _observed(), CONFIG, NOW)
    later = NOW + timedelta(seconds=61)
    p = plan(_next(llm, first), _observed(_live(first, _traffic(30), _traffic(270))), CONFIG, later)
    assert _routes(p) == [("1", "support-bot", 50), ("2", "support-bot-candidate", 50)]
    assert p.status.stage == "Canary 50%"
    canary = p.status.candidate.canary if p.status.candidate else None
    assert canary is not None and (canary.step, canary.step_started_at) == (
        2,
        "2026-11-28T12:01:01Z",
    )
    assert [(s.step, s.outcome) for s in canary.steps] == [(1, "Passed"), (2, "Running")]
    assert canary.steps[0].requests == 30 and canary.steps[0].p95_ms is not None
    assert "CanaryStepStarted" in [e.reason for e in p.events]


def test_figures_read_for_another_window_are_not_used() -> None:
    llm = _canary_llm()
    first = plan(llm, _observed(), CONFIG, NOW)
    stale = LiveTraffic(since="2026-11-28T11:00:00Z", releases={"2": _traffic(30)}, answered=1)
    p = plan(_next(llm, first), _observed(stale), CONFIG, NOW + timedelta(seconds=61))
    assert p.status.stage is None and _routes(p) == [("1", "support-bot", 100)]
    assert "only 0 candidate request(s)" in " ".join(p.status.history[0].reasons)


def test_the_canary_walks_to_promotion_and_history_keeps_each_steps_figures() -> None:
    llm = _canary_llm()
    now = NOW
    p = plan(llm, _observed(), CONFIG, now)
    weights = [p.status.stage]
    for _ in range(2):  # each step: a look within the pause, then one after it
        llm, now = _next(llm, p), now + timedelta(seconds=20)
        p = plan(llm, _observed(_live(p, _traffic(40), _traffic(200))), CONFIG, now)
        llm, now = _next(llm, p), now + timedelta(minutes=2)
        p = plan(llm, _observed(_live(p, _traffic(40), _traffic(200))), CONFIG, now)
        weights.append(p.status.stage)
    assert weights == ["Canary 10%", "Canary 50%", None]
    assert _aliases(p) == [("production", "2")]
    assert p.status.phase is Phase.PROMOTING
    assert _routes(p) == [("2", "support-bot", 100)]
    release = p.status.history[0]
    assert (release.version, release.verdict) == ("2", "promoted")
    assert [(s.step, s.weight, s.outcome, s.requests) for s in release.canary] == [
        (1, 10, "Passed", 40),
        (2, 50, "Passed", 40),
    ]


def test_a_breach_sends_all_traffic_back_at_once_and_refuses_the_version() -> None:
    llm = _canary_llm()
    first = plan(llm, _observed(), CONFIG, NOW)
    live = _live(first, _traffic(40, errors=12), _traffic(360))
    p = plan(_next(llm, first), _observed(live), CONFIG, NOW + timedelta(seconds=10))
    assert _routes(p) == [("1", "support-bot", 100)]
    assert _aliases(p) == [] and p.status.stage is None
    assert "2" in p.status.refused_versions
    assert _cond(p, "LoadTestPassed") == (ConditionStatus.FALSE, "CanaryFailed")
    refused = next(e for e in p.events if e.reason == "Refused")
    assert "canary step 1 (10%): error rate 30.00% (12 of 40)" in refused.message
    tags = next(a.tags for a in p.registry if a.kind == "set_tags")
    assert tags is not None and tags["kubellm.rollout.verdict"] == "refused"
    assert "error rate 30.00%" in tags["kubellm.rollout.reasons"]
    release = p.status.history[0]
    assert release.verdict == "refused" and release.canary[0].outcome == "Failed"
    assert release.canary[0].error_rate == 0.3
    # the next pass reads the version as refused: it is not tried again
    again = plan(_next(llm, p), _observed(), CONFIG, NOW + timedelta(seconds=20))
    assert _routes(again) == [("1", "support-bot", 100)]
    assert again.status.candidate is None or again.status.candidate.canary is None


def test_a_step_with_too_few_requests_fails_when_its_pause_ends() -> None:
    llm = _canary_llm()
    first = plan(llm, _observed(), CONFIG, NOW)
    live = _live(first, _traffic(19), _traffic(300))
    waiting = plan(_next(llm, first), _observed(live), CONFIG, NOW + timedelta(seconds=59))
    assert waiting.status.stage == "Canary 10%"
    p = plan(_next(llm, first), _observed(live), CONFIG, NOW + timedelta(seconds=60))
    assert _routes(p) == [("1", "support-bot", 100)] and "2" in p.status.refused_versions
    assert (
        "only 19 candidate request(s) in the step, fewer than the minimum 20"
        in (p.status.history[0].reasons[0])
    )


def test_without_any_gateway_answer_a_step_fails_closed_and_says_why() -> None:
    llm = _canary_llm()
    first = plan(llm, _observed(), CONFIG, NOW)
    p = plan(_next(llm, first), _observed(None), CONFIG, NOW + timedelta(minutes=5))
    assert "2" in p.status.refused_versions
    assert "no gateway answered" in p.status.history[0].reasons[-1]


def test_a_restarted_operator_resumes_the_step_and_its_window_from_status() -> None:
    llm = _canary_llm()
    first = plan(llm, _observed(), CONFIG, NOW)
    second = plan(
        _next(llm, first),
        _observed(_live(first, _traffic(30), _traffic(100))),
        CONFIG,
        NOW + timedelta(seconds=61),
    )
    # a new operator process: only the LLM's status carries the canary
    resumed = _next(_canary_llm(), second)
    p = plan(resumed, _observed(), CONFIG, NOW + timedelta(seconds=70))
    canary = p.status.candidate.canary if p.status.candidate else None
    assert canary is not None and canary.step == 2
    assert canary.step_started_at == "2026-11-28T12:01:01Z"
    assert _routes(p) == [("1", "support-bot", 50), ("2", "support-bot-candidate", 50)]
    assert "CanaryStepStarted" not in [e.reason for e in p.events]


def test_a_last_step_at_full_weight_routes_nothing_to_production() -> None:
    llm = _canary_llm(steps=[{"weight": 100, "pause": "1m"}])
    p = plan(llm, _observed(), CONFIG, NOW)
    assert _routes(p) == [("2", "support-bot-candidate", 100)]
    assert p.status.stage == "Canary 100%"


def test_blue_green_promotes_at_once_as_before() -> None:
    p = plan(_llm(status=_verified("1")), _observed(), CONFIG, NOW)
    assert _aliases(p) == [("production", "2")]
    assert p.status.stage is None and p.status.candidate is not None
    assert p.status.candidate.canary is None


def test_a_first_version_has_no_traffic_to_share_and_is_promoted_on_its_load_test() -> None:
    llm = _canary_llm(status={})
    obs = _with_loadtest(_candidate_ready(llm), PASSED_JOB)
    p = plan(llm, obs, CONFIG, NOW)
    assert _aliases(p) == [("production", "2")]
    assert p.status.stage is None and p.status.phase is Phase.PROMOTING
