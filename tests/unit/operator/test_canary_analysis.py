"""A canary step judged on live figures: fail closed on too little traffic, each objective
breached on its own, the candidate compared with production over the same window."""

from __future__ import annotations

import pytest

from kubellm.gateway.windows import ReleaseTraffic, bucket_of
from kubellm.loadtests.slo import Objectives, parse_slo
from kubellm.operator.planning.analysis import StepOutcome, judge_step


def traffic(
    requests: int,
    *,
    errors: int = 0,
    latency_ms: float = 100.0,
    ttfb_ms: float | None = 20.0,
    tokens_per_request: int = 10,
) -> ReleaseTraffic:
    """``requests`` answers that all took ``latency_ms`` (first byte after ``ttfb_ms``)."""
    return ReleaseTraffic(
        requests=requests,
        errors=errors,
        tokens=requests * tokens_per_request,
        seconds=requests * latency_ms / 1000 if tokens_per_request else 0.0,
        latency={bucket_of(latency_ms / 1000): requests},
        ttfb={bucket_of(ttfb_ms / 1000): requests} if ttfb_ms is not None else {},
    )


DEFAULT = parse_slo("maxErrorRate=0.01")


def judge(cand, prod, objectives: Objectives = DEFAULT, *, over: bool = True, minimum: int = 20):
    return judge_step(cand, prod, objectives, min_requests=minimum, pause_over=over)


def test_a_healthy_step_passes_when_its_pause_is_over_and_waits_before() -> None:
    assert judge(traffic(50), traffic(450)).outcome is StepOutcome.PASSED
    assert judge(traffic(50), traffic(450), over=False).outcome is StepOutcome.WAITING


def test_too_few_candidate_requests_never_pass() -> None:
    result = judge(traffic(19), traffic(500))
    assert result.outcome is StepOutcome.FAILED
    assert "only 19 candidate request(s)" in result.reasons[0] and "minimum 20" in result.reasons[0]
    assert judge(None, traffic(500)).outcome is StepOutcome.FAILED
    # before the pause is over, too few is not a verdict yet, even with every request failed
    assert judge(traffic(5, errors=5), None, over=False).outcome is StepOutcome.WAITING


def test_error_rate_above_the_objective_fails_at_once() -> None:
    result = judge(traffic(100, errors=2), traffic(900), over=False)
    assert result.outcome is StepOutcome.FAILED
    assert result.reasons == ("error rate 2.00% (2 of 100) is above maxErrorRate 1.00%",)
    assert judge(traffic(100, errors=1), traffic(900)).outcome is StepOutcome.PASSED


@pytest.mark.parametrize(
    ("slo", "candidate", "needle"),
    [
        ("p95LatencyMs=500", traffic(40, latency_ms=800), "p95 latency"),
        ("p95TimeToFirstTokenMs=50", traffic(40, ttfb_ms=120), "p95 time to first token"),
        ("p95TimeToFirstTokenMs=50", traffic(40, ttfb_ms=None), "was not measured"),
        (
            "maxLatencyRegressionPercent=20",
            traffic(40, latency_ms=150, tokens_per_request=15),  # as fast per token
            "above production's",
        ),
    ],
)
def test_each_objective_breached_fails_the_step_naming_it(
    slo: str, candidate: ReleaseTraffic, needle: str
) -> None:
    result = judge(candidate, traffic(400), parse_slo(slo))
    assert result.outcome is StepOutcome.FAILED
    assert len(result.reasons) == 1 and needle in result.reasons[0]


def test_slower_generation_than_production_is_a_regression() -> None:
    slo = parse_slo("maxLatencyRegressionPercent=20")
    # same latency, but 6 tokens per answer instead of 10: 40% slower generation
    result = judge(traffic(40, tokens_per_request=6), traffic(400), slo)
    assert result.outcome is StepOutcome.FAILED
    assert "tokens/s is 40.0% below production's" in result.reasons[0]
    assert judge(traffic(40, tokens_per_request=9), traffic(400), slo).outcome is StepOutcome.PASSED


def test_the_relative_objective_needs_production_traffic_in_the_same_window() -> None:
    slo = parse_slo("maxLatencyRegressionPercent=20")
    # production answered too little in this window (e.g. a 100% step): not compared
    assert judge(traffic(40, latency_ms=900), traffic(3), slo).outcome is StepOutcome.PASSED
    assert judge(traffic(40, latency_ms=900), None, slo).outcome is StepOutcome.PASSED
    # compared with production's figures of the same window, not an absolute value
    slow_window = judge(traffic(40, latency_ms=900), traffic(400, latency_ms=850), slo)
    assert slow_window.outcome is StepOutcome.PASSED
    assert slow_window.production.requests == 400 and slow_window.candidate.requests == 40


def test_every_breach_is_reported() -> None:
    slo = parse_slo("maxErrorRate=0.01,p95LatencyMs=500,p95TimeToFirstTokenMs=50")
    result = judge(traffic(40, errors=10, latency_ms=900, ttfb_ms=300), traffic(400), slo)
    assert result.outcome is StepOutcome.FAILED and len(result.reasons) == 3
    assert result.candidate.error_rate == 0.25
