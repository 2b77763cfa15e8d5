"""The verdict: every objective, the fail-closed cases and the relative objective."""

from __future__ import annotations

import dataclasses

import pytest

from kubellm.loadtests.figures import Figures, Percentiles
from kubellm.loadtests.slo import Objectives, parse_slo
from kubellm.loadtests.verdict import RunResult, judge, latency_regression_percent


def pct(p95: float, count: int = 1000) -> Percentiles:
    return Percentiles(
        count=count, p50=p95 / 2, p90=p95 * 0.9, p95=p95, p99=p95 * 1.2, max=p95 * 2, avg=p95 / 2
    )


def figures(**overrides) -> Figures:
    """A healthy 10 s run: 1000 requests, 5 failed, p95 200 ms, ttft 80 ms, 5000 tokens."""
    base = Figures(
        requests=1000,
        failures=5,
        duration_s=10.0,
        planned_duration_s=10.0,
        completed=True,
        latency=pct(200),
        ttft=pct(80, count=500),
        itl=pct(10, count=5000),
        tokens=5000,
        users=8,
        errors=[{"error": "/v1/completions: HTTP 500", "occurrences": 5}],
    )
    return dataclasses.replace(base, **overrides)


def ok(**overrides) -> RunResult:
    return RunResult(figures(**overrides))


ALL = parse_slo(
    "p95LatencyMs=250,maxErrorRate=0.01,minRequestsPerSecond=50,"
    "p95TimeToFirstTokenMs=100,minTokensPerSecond=400"
)


def test_healthy_run_meeting_every_objective_passes_without_reasons():
    verdict = judge(ok(), ALL)
    assert verdict.passed and verdict.status == "pass"
    assert verdict.reasons == ()


def test_objectives_exactly_at_their_limit_pass():
    exact = parse_slo(
        "p95LatencyMs=200,maxErrorRate=0.005,minRequestsPerSecond=100,"
        "p95TimeToFirstTokenMs=80,minTokensPerSecond=500"
    )
    assert judge(ok(), exact).passed


@pytest.mark.parametrize(
    ("objectives", "run", "expected"),
    [
        ("p95LatencyMs=150", {}, "p95 latency 200 ms exceeds p95LatencyMs=150 ms"),
        (
            "maxErrorRate=0.001",
            {},
            "error rate 0.50% (5 of 1000 requests failed) exceeds maxErrorRate=0.001 (0.10%); "
            "most frequent error: /v1/completions: HTTP 500",
        ),
        (
            "minRequestsPerSecond=150",
            {},
            "throughput 100.00 requests/s is below minRequestsPerSecond=150",
        ),
        (
            "p95TimeToFirstTokenMs=50",
            {},
            "p95 time to first token 80 ms exceeds p95TimeToFirstTokenMs=50 ms",
        ),
        (
            "minTokensPerSecond=600",
            {},
            "generation rate 500.00 tokens/s is below minTokensPerSecond=600",
        ),
    ],
)
def test_each_violated_objective_fails_with_a_reason_naming_figure_and_limit(
    objectives, run, expected
):
    verdict = judge(ok(**run), parse_slo(objectives))
    assert not verdict.passed and verdict.status == "fail"
    assert verdict.reasons == (expected,)


def test_one_reason_per_violated_objective():
    strict = parse_slo(
        "p95LatencyMs=1,maxErrorRate=0,minRequestsPerSecond=1000,"
        "p95TimeToFirstTokenMs=1,minTokensPerSecond=100000"
    )
    verdict = judge(ok(), strict)
    assert len(verdict.reasons) == 5
    assert [r.split()[0] for r in verdict.reasons] == [
        "p95",
        "error",
        "throughput",
        "p95",
        "generation",
    ]


def test_a_figure_just_below_its_limit_is_shown_with_enough_decimals():
    verdict = judge(
        ok(requests=4, failures=0, duration_s=4.001), parse_slo("minRequestsPerSecond=1")
    )
    assert verdict.reasons == ("throughput 0.9998 requests/s is below minRequestsPerSecond=1",)


def test_no_objectives_is_a_fail_because_nothing_was_verified():
    verdict = judge(ok(), Objectives())
    assert not verdict.passed
    assert "no objectives" in verdict.reasons[0]


# --- fail closed -----------------------------------------------------------------------------


def test_no_requests_completed_fails_even_with_lenient_objectives():
    verdict = judge(
        ok(requests=0, failures=0, latency=None, ttft=None, itl=None, tokens=0),
        parse_slo("maxErrorRate=1"),
    )
    assert not verdict.passed
    assert verdict.reasons == ("candidate: no requests completed in the measurement window",)


def test_missing_figures_fail_with_the_runs_problem():
    verdict = judge(RunResult(None, "Locust exited with code 2"), ALL)
    assert not verdict.passed
    assert verdict.reasons == ("candidate: Locust exited with code 2",)


def test_missing_figures_without_an_explanation_still_fail():
    verdict = judge(RunResult(None), parse_slo("maxErrorRate=1"))
    assert verdict.reasons == ("candidate: no figures were measured",)


def test_unreachable_target_fails_even_if_nothing_was_counted_against_it():
    unreachable = RunResult(None, "target unreachable: connection refused")
    assert not judge(unreachable, parse_slo("maxErrorRate=1")).passed


def test_run_cut_short_fails_even_when_its_figures_meet_every_objective():
    verdict = judge(ok(completed=False, duration_s=4.0), ALL)
    assert not verdict.passed
    assert verdict.reasons == ("candidate: run cut short: measured 4.0 s of the planned 10.0 s",)


def test_a_problem_reported_beside_complete_figures_still_fails():
    verdict = judge(RunResult(figures(), "Locust worker 1 exited early with code -9"), ALL)
    assert not verdict.passed
    assert verdict.reasons[0].startswith("candidate: Locust worker 1")


def test_ttft_objective_without_streamed_requests_is_a_missing_figure():
    verdict = judge(ok(ttft=None), parse_slo("p95TimeToFirstTokenMs=1000"))
    assert not verdict.passed
    assert verdict.reasons[0].startswith("figure missing: p95 time to first token")


def test_tokens_objective_with_an_incomplete_token_count_is_a_missing_figure():
    verdict = judge(ok(tokens=None), parse_slo("minTokensPerSecond=1"))
    assert not verdict.passed
    assert verdict.reasons[0].startswith("figure missing: tokens/s")


def test_latency_objective_without_latencies_is_a_missing_figure():
    verdict = judge(ok(latency=None), parse_slo("p95LatencyMs=1000"))
    assert verdict.reasons[0].startswith("figure missing: p95 latency")


def test_zero_length_window_cannot_prove_throughput():
    verdict = judge(ok(duration_s=0.0, completed=True), parse_slo("minRequestsPerSecond=1"))
    assert not verdict.passed
    assert verdict.reasons[0].startswith("figure missing: requests/s")


def test_all_requests_failing_fails_on_error_rate():
    verdict = judge(ok(failures=1000), parse_slo("maxErrorRate=0.5"))
    assert "error rate 100.00%" in verdict.reasons[0]


# --- the relative objective --------------------------------------------------------------------

REL = parse_slo("maxLatencyRegressionPercent=20")


def test_candidate_fifty_percent_slower_than_baseline_fails_on_regression():
    verdict = judge(ok(latency=pct(300)), REL, baseline=ok(latency=pct(200)))
    assert not verdict.passed
    assert verdict.reasons == (
        "p95 latency 300 ms is 50.0% above the baseline's 200 ms, "
        "exceeding maxLatencyRegressionPercent=20",
    )


def test_candidate_within_the_allowed_regression_passes():
    assert judge(ok(latency=pct(230)), REL, baseline=ok(latency=pct(200))).passed


def test_candidate_faster_than_baseline_passes():
    assert judge(ok(latency=pct(100)), REL, baseline=ok(latency=pct(200))).passed


def test_relative_objective_without_baseline_fails():
    verdict = judge(ok(), REL)
    assert not verdict.passed
    assert "needs a baseline" in verdict.reasons[0]


@pytest.mark.parametrize(
    ("baseline", "fragment"),
    [
        (RunResult(None, "target unreachable"), "baseline: target unreachable"),
        (RunResult(None), "baseline: no figures were measured"),
        (ok(requests=0, latency=None), "baseline: no requests completed"),
        (ok(completed=False, duration_s=2.0), "baseline: run cut short"),
    ],
)
def test_relative_objective_with_an_unusable_baseline_fails(baseline, fragment):
    verdict = judge(ok(), REL, baseline=baseline)
    assert not verdict.passed
    assert fragment in verdict.reasons[0]
    assert verdict.reasons[-1] == "maxLatencyRegressionPercent=20 cannot be judged"


def test_baseline_is_only_judged_through_the_relative_objective():
    # a broken baseline does not fail a release whose objectives are all absolute
    assert judge(ok(), parse_slo("p95LatencyMs=500"), baseline=RunResult(None, "down")).passed


def test_sub_millisecond_baseline_is_floored_to_one_millisecond():
    assert latency_regression_percent(2.0, 0.0) == pytest.approx(100.0)
    assert latency_regression_percent(150.0, 100.0) == pytest.approx(50.0)
    assert latency_regression_percent(50.0, 100.0) == pytest.approx(-50.0)


def test_relative_and_absolute_misses_are_reported_together():
    both = parse_slo("p95LatencyMs=300,maxLatencyRegressionPercent=10")
    verdict = judge(ok(latency=pct(400)), both, baseline=ok(latency=pct(200)))
    assert len(verdict.reasons) == 2
