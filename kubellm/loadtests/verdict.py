"""The verdict: measured figures + objectives -> pass or fail, with one reason per miss.

This is the decision that promotes or refuses a release, so it is a pure function with no
I/O, tested case by case. It fails closed: a run that measured nothing, stopped early,
could not reach its target, or lacks a figure that an objective needs is a fail, never a
pass. Every violated objective contributes its own reason naming the figure, the
objective and both values, because the reason is what ``kubectl describe llm`` shows when a
release is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubellm.api.vocabulary import LoadTestVerdict
from kubellm.loadtests.figures import Figures
from kubellm.loadtests.slo import Objectives

__all__ = ["RunResult", "Verdict", "judge", "latency_regression_percent"]

# The denominator of the relative objective never drops below this: Locust rounds latencies
# to whole milliseconds, and a sub-millisecond baseline would turn any change into +inf %.
MIN_BASELINE_P95_MS = 1.0


@dataclass(frozen=True)
class RunResult:
    """What one Locust run left behind: its figures, and/or why it has none or is unusable."""

    figures: Figures | None
    problem: str | None = None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...]

    @property
    def status(self) -> LoadTestVerdict:
        return LoadTestVerdict.PASS if self.passed else LoadTestVerdict.FAIL


def latency_regression_percent(candidate_p95_ms: float, baseline_p95_ms: float) -> float:
    """How much slower (in %) the candidate's p95 is than the baseline's (negative: faster)."""
    base = max(baseline_p95_ms, MIN_BASELINE_P95_MS)
    return (candidate_p95_ms - base) / base * 100.0


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def _below(value: float, limit: float) -> str:
    """``value`` with enough decimals to show that it differs from ``limit``
    (0.9998 requests/s must not print as 1.00 beside a limit of 1)."""
    for decimals in range(2, 7):
        text = f"{value:.{decimals}f}"
        if text != f"{limit:.{decimals}f}":
            return text
    return f"{value:.6f}"


def _usable(result: RunResult, label: str) -> tuple[Figures | None, list[str]]:
    """The figures of a run if they can be judged, else None and the reasons why not."""
    reasons: list[str] = []
    fig = result.figures
    if result.problem:
        reasons.append(f"{label}: {result.problem}")
    if fig is None:
        if not result.problem:
            reasons.append(f"{label}: no figures were measured")
        return None, reasons
    if not fig.completed:
        reasons.append(
            f"{label}: run cut short: measured {fig.duration_s:.1f} s of the planned "
            f"{fig.planned_duration_s:.1f} s"
        )
    if fig.requests == 0:
        reasons.append(f"{label}: no requests completed in the measurement window")
        return None, reasons
    return fig, reasons


def _check_absolute(fig: Figures, obj: Objectives) -> list[str]:
    reasons: list[str] = []

    def missing(what: str, why: str) -> None:
        reasons.append(f"figure missing: {what} ({why})")

    if obj.p95_latency_ms is not None:
        p95 = fig.p95_latency_ms
        if p95 is None:
            missing("p95 latency", "no latency was recorded")
        elif p95 > obj.p95_latency_ms:
            reasons.append(f"p95 latency {p95:g} ms exceeds p95LatencyMs={obj.p95_latency_ms:g} ms")
    if obj.max_error_rate is not None:
        rate = fig.error_rate
        if rate is None:
            missing("error rate", "no requests were counted")
        elif rate > obj.max_error_rate:
            most = fig.errors[0]["error"] if fig.errors else None
            reasons.append(
                f"error rate {_pct(rate)} ({fig.failures} of {fig.requests} requests failed) "
                f"exceeds maxErrorRate={obj.max_error_rate:g} ({_pct(obj.max_error_rate)})"
                + (f"; most frequent error: {most}" if most else "")
            )
    if obj.min_requests_per_second is not None:
        rps = fig.requests_per_second
        if rps is None:
            missing("requests/s", "the measurement window has no length")
        elif rps < obj.min_requests_per_second:
            reasons.append(
                f"throughput {_below(rps, obj.min_requests_per_second)} requests/s is below "
                f"minRequestsPerSecond={obj.min_requests_per_second:g}"
            )
    if obj.p95_time_to_first_token_ms is not None:
        ttft = fig.p95_time_to_first_token_ms
        if ttft is None:
            missing(
                "p95 time to first token",
                "no streamed request completed; streaming must be part of the mix",
            )
        elif ttft > obj.p95_time_to_first_token_ms:
            reasons.append(
                f"p95 time to first token {ttft:g} ms exceeds "
                f"p95TimeToFirstTokenMs={obj.p95_time_to_first_token_ms:g} ms"
            )
    if obj.min_tokens_per_second is not None:
        tps = fig.tokens_per_second
        if tps is None:
            missing("tokens/s", "a response did not report how many tokens it generated")
        elif tps < obj.min_tokens_per_second:
            reasons.append(
                f"generation rate {_below(tps, obj.min_tokens_per_second)} tokens/s is below "
                f"minTokensPerSecond={obj.min_tokens_per_second:g}"
            )
    return reasons


def _check_relative(fig: Figures, obj: Objectives, baseline: RunResult | None) -> list[str]:
    limit = obj.max_latency_regression_percent
    if limit is None:
        return []
    if baseline is None:
        return [f"maxLatencyRegressionPercent={limit:g} needs a baseline, and none was measured"]
    base, reasons = _usable(baseline, "baseline")
    if base is None or reasons:
        return [*reasons, f"maxLatencyRegressionPercent={limit:g} cannot be judged"]
    cand_p95, base_p95 = fig.p95_latency_ms, base.p95_latency_ms
    if cand_p95 is None or base_p95 is None:
        return ["figure missing: p95 latency of the candidate or the baseline"]
    regression = latency_regression_percent(cand_p95, base_p95)
    if regression > limit:
        return [
            f"p95 latency {cand_p95:g} ms is {regression:.1f}% above the baseline's "
            f"{base_p95:g} ms, exceeding maxLatencyRegressionPercent={limit:g}"
        ]
    return []


def judge(
    candidate: RunResult,
    objectives: Objectives,
    baseline: RunResult | None = None,
) -> Verdict:
    """Judge the candidate's run against ``objectives`` (and ``baseline`` for the relative one).

    Passes only when the run measured a complete window with at least one request and every
    objective that is set is met by a figure that exists. No objectives at all is a fail too:
    a gate that checks nothing would promote anything.
    """
    reasons: list[str] = []
    if objectives.is_empty:
        reasons.append("no objectives were given, so nothing could be verified")
    fig, problems = _usable(candidate, "candidate")
    reasons.extend(problems)
    if fig is not None:
        reasons.extend(_check_absolute(fig, objectives))
        reasons.extend(_check_relative(fig, objectives, baseline))
    return Verdict(passed=not reasons, reasons=tuple(reasons))
