"""Reading what a child left behind: the results of `kubellm train` and `kubellm loadtest`
in their termination messages, through the classes that wrote them (`kubellm.api.results`).

A termination message is untrusted input (see `kubellm.api.results`: reading one never
raises, and each field is coerced, redacted and bounded). What is added here is the
operator's side of the contract: the load test's exit code outranks its message, and
anything unreadable fails the gate closed.
"""

from __future__ import annotations

from kubellm.api.results import LoadTestSummary, TrainingSummary
from kubellm.api.status import LoadTestFigures
from kubellm.api.vocabulary import LoadTestVerdict

__all__ = ["parse_loadtest_message", "parse_training_message"]

NO_VERDICT = "load test produced no readable verdict"


def parse_training_message(message: str | None) -> TrainingSummary:
    """The summary `kubellm train` left in its termination message (fields it lacks or
    that cannot be read are None; a message that is not JSON is the error)."""
    return TrainingSummary.from_message(message)


def parse_loadtest_message(message: str | None, exit_code: int | None) -> LoadTestFigures:
    """The gate's figures for status; anything unreadable is a failed gate."""
    summary = LoadTestSummary.from_message(message)
    verdict = summary.verdict
    if exit_code is not None and exit_code != 0 and verdict is LoadTestVerdict.PASS:
        verdict = LoadTestVerdict.FAIL  # never promote on a non-zero exit
    if verdict is None:
        verdict = LoadTestVerdict.ERROR if exit_code != 0 else LoadTestVerdict.FAIL
    reasons = list(summary.reasons)
    if verdict is not LoadTestVerdict.PASS and not reasons:
        reasons = [NO_VERDICT]
    return LoadTestFigures(
        verdict=verdict,
        p50_ms=summary.p50_latency_ms,
        p95_ms=summary.p95_latency_ms,
        p99_ms=summary.p99_latency_ms,
        p95_ttft_ms=summary.p95_time_to_first_token_ms,
        requests_per_second=summary.requests_per_second,
        tokens_per_second=summary.tokens_per_second,
        error_rate=summary.error_rate,
        requests=summary.requests,
        perplexity=summary.perplexity,
        production_perplexity=summary.baseline_perplexity,
        match_rate=summary.match_rate,
        reasons=reasons,
    )
