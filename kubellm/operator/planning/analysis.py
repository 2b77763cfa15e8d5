"""Judging a canary step: the candidate's live figures against the objectives and production.

A canary step sends a share of the clients' requests to the candidate; the gateways count
each release's answers by the second (`kubellm.gateway.windows`), and the operator reads the
sums since the step's start for both releases, so the candidate and production are compared
over the same window. This module is the decision, a pure function of those sums, tested
figure by figure (like the load test's `kubellm.loadtests.verdict`, whose objectives and
regression formula it reuses).

It fails closed. Until the candidate answered ``min_requests`` requests in the step nothing
is judged, and a step whose pause ends with fewer fails: a release is never promoted on
traffic it did not get. Once it has enough, every objective of ``spec.rollout.loadTest.slo``
that a live window can judge is checked at each look, so a breach ends the step at once
rather than at the end of its pause:

- ``maxErrorRate``: the candidate's failed fraction (5xx, answers cut mid-stream);
- ``p95LatencyMs`` and ``p95TimeToFirstTokenMs``: the candidate's p95 (an objective whose
  figure was not measured, e.g. no answer reached its first byte, is a breach);
- ``maxLatencyRegressionPercent``: the candidate's p95 latency against production's, and its
  generation speed (completion tokens per second of answering) against production's, each
  allowed to be worse by that percentage; judged only when production answered at least
  ``min_requests`` requests in the same window (at a 100% step it answers none).

``minRequestsPerSecond`` and ``minTokensPerSecond`` are not judged on live traffic: they
are aggregate rates of the load test's fixed load, while a step's rate is set by how many
clients happen to call and by the step's weight, not by the release.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kubellm.gateway.windows import ReleaseTraffic
from kubellm.loadtests.slo import Objectives
from kubellm.loadtests.verdict import latency_regression_percent

__all__ = ["LiveFigures", "StepJudgement", "StepOutcome", "judge_step", "judge_watch"]


class StepOutcome(StrEnum):
    #: not enough requests yet, or the pause is not over and nothing was breached
    WAITING = "Waiting"
    PASSED = "Passed"
    FAILED = "Failed"


@dataclass(frozen=True)
class LiveFigures:
    """One release's figures over a step's window."""

    requests: int = 0
    errors: int = 0
    error_rate: float | None = None
    p95_ms: float | None = None
    p95_time_to_first_token_ms: float | None = None
    tokens_per_second: float | None = None

    @classmethod
    def of(cls, traffic: ReleaseTraffic | None) -> LiveFigures:
        if traffic is None:
            return cls()
        return cls(
            requests=traffic.requests,
            errors=traffic.errors,
            error_rate=traffic.error_rate,
            p95_ms=traffic.p95_ms,
            p95_time_to_first_token_ms=traffic.p95_ttfb_ms,
            tokens_per_second=traffic.tokens_per_second,
        )


@dataclass(frozen=True)
class StepJudgement:
    outcome: StepOutcome
    reasons: tuple[str, ...]
    candidate: LiveFigures
    production: LiveFigures


def _breaches(
    cand: LiveFigures, prod: LiveFigures, objectives: Objectives, min_requests: int
) -> list[str]:
    reasons: list[str] = []
    o = objectives
    rate = cand.error_rate
    if o.max_error_rate is not None and rate is not None and rate > o.max_error_rate:
        reasons.append(
            f"error rate {rate:.2%} ({cand.errors} of {cand.requests}) is above "
            f"maxErrorRate {o.max_error_rate:.2%}"
        )
    if o.p95_latency_ms is not None:
        if cand.p95_ms is None:
            reasons.append("p95 latency was not measured (p95LatencyMs is set)")
        elif cand.p95_ms > o.p95_latency_ms:
            reasons.append(
                f"p95 latency {cand.p95_ms:g} ms is above p95LatencyMs {o.p95_latency_ms:g}"
            )
    if o.p95_time_to_first_token_ms is not None:
        ttft = cand.p95_time_to_first_token_ms
        if ttft is None:
            reasons.append(
                "p95 time to first token was not measured (p95TimeToFirstTokenMs is set)"
            )
        elif ttft > o.p95_time_to_first_token_ms:
            reasons.append(
                f"p95 time to first token {ttft:g} ms is above p95TimeToFirstTokenMs "
                f"{o.p95_time_to_first_token_ms:g}"
            )
    pct = o.max_latency_regression_percent
    if pct is not None and prod.requests >= min_requests:
        if cand.p95_ms is not None and prod.p95_ms is not None:
            slower = latency_regression_percent(cand.p95_ms, prod.p95_ms)
            if slower > pct:
                reasons.append(
                    f"p95 latency {cand.p95_ms:g} ms is {slower:.1f}% above production's "
                    f"{prod.p95_ms:g} ms in the same window (maxLatencyRegressionPercent {pct:g})"
                )
        c_tps, p_tps = cand.tokens_per_second, prod.tokens_per_second
        if c_tps is not None and p_tps is not None and p_tps > 0:
            drop = (p_tps - c_tps) / p_tps * 100.0
            if drop > pct:
                reasons.append(
                    f"{c_tps:g} tokens/s is {drop:.1f}% below production's {p_tps:g} in the "
                    f"same window (maxLatencyRegressionPercent {pct:g})"
                )
    return reasons


def judge_step(
    candidate: ReleaseTraffic | None,
    production: ReleaseTraffic | None,
    objectives: Objectives,
    *,
    min_requests: int,
    pause_over: bool,
) -> StepJudgement:
    """The step's outcome from both releases' answers since the step started.

    ``candidate`` and ``production`` must cover the same window (None: no answer in it);
    ``pause_over`` says whether the step's pause has elapsed.
    """
    cand, prod = LiveFigures.of(candidate), LiveFigures.of(production)
    if cand.requests < min_requests:
        if not pause_over:
            return StepJudgement(StepOutcome.WAITING, (), cand, prod)
        reason = (
            f"only {cand.requests} candidate request(s) in the step, fewer than the "
            f"minimum {min_requests}: not enough live traffic to judge"
        )
        return StepJudgement(StepOutcome.FAILED, (reason,), cand, prod)
    reasons = _breaches(cand, prod, objectives, min_requests)
    if reasons:
        return StepJudgement(StepOutcome.FAILED, tuple(reasons), cand, prod)
    outcome = StepOutcome.PASSED if pause_over else StepOutcome.WAITING
    return StepJudgement(outcome, (), cand, prod)


def judge_watch(
    production: ReleaseTraffic | None, objectives: Objectives, *, min_requests: int
) -> StepJudgement:
    """One look of the post-promotion watch (`watching`) at production's live figures.

    The same objectives as a step, but no fail-closed rule: a look with fewer than
    ``min_requests`` requests is WAITING (too little traffic to judge is not a reason to
    roll back), one within the objectives PASSED, a breach FAILED. The judged release is the
    judgement's ``candidate``; there is no baseline (the previous release takes no traffic),
    so ``maxLatencyRegressionPercent`` is not judged here.
    """
    figures = LiveFigures.of(production)
    if figures.requests < min_requests:
        return StepJudgement(StepOutcome.WAITING, (), figures, LiveFigures())
    reasons = _breaches(figures, LiveFigures(), objectives, min_requests)
    outcome = StepOutcome.FAILED if reasons else StepOutcome.PASSED
    return StepJudgement(outcome, tuple(reasons), figures, LiveFigures())
