"""SLO strings and durations: what parses, and how bad input is named."""

from __future__ import annotations

import pytest

from kubellm.loadtests.slo import (
    OBJECTIVE_NAMES,
    InputError,
    Objectives,
    format_duration,
    parse_duration,
    parse_slo,
)


def test_every_objective_parses_by_its_camel_case_name():
    text = (
        "p95LatencyMs=500,maxErrorRate=0.01,minRequestsPerSecond=20,"
        "p95TimeToFirstTokenMs=200,minTokensPerSecond=100,maxLatencyRegressionPercent=10"
    )
    obj = parse_slo(text)
    assert obj == Objectives(
        p95_latency_ms=500,
        max_error_rate=0.01,
        min_requests_per_second=20,
        p95_time_to_first_token_ms=200,
        min_tokens_per_second=100,
        max_latency_regression_percent=10,
    )
    assert tuple(obj.to_dict()) == OBJECTIVE_NAMES


def test_whitespace_around_items_is_ignored_and_unset_objectives_stay_none():
    obj = parse_slo(" p95LatencyMs = 250 , maxErrorRate=0 ")
    assert obj.p95_latency_ms == 250 and obj.max_error_rate == 0
    assert obj.min_tokens_per_second is None
    assert obj.to_dict() == {"p95LatencyMs": 250, "maxErrorRate": 0}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no objectives"),
        ("   ", "no objectives"),
        ("p95LatencyMs", "is not name=value"),
        ("=5", "is not name=value"),
        ("p95LatencyMs=500,", "stray comma"),
        ("p95Latency=500", "unknown objective 'p95Latency'"),
        ("p95LatencyMs=fast", "'fast' is not a number"),
        ("p95LatencyMs=-1", "must be a finite number >= 0"),
        ("p95LatencyMs=inf", "must be a finite number >= 0"),
        ("p95LatencyMs=nan", "must be a finite number >= 0"),
        ("maxErrorRate=5", "must be between 0 and 1"),
        ("p95LatencyMs=1,p95LatencyMs=2", "given twice"),
    ],
)
def test_malformed_slo_is_refused_naming_the_input(text, fragment):
    with pytest.raises(InputError) as info:
        parse_slo(text, source="--slo")
    assert fragment in str(info.value)
    assert str(info.value).startswith("--slo")


def test_unknown_objective_message_lists_the_known_ones():
    with pytest.raises(InputError) as info:
        parse_slo("maxLatency=3")
    for name in OBJECTIVE_NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60s", 60),
        ("2m", 120),
        ("1m30s", 90),
        ("1h", 3600),
        ("1h2m3s", 3723),
        ("500ms", 0.5),
        ("2.5s", 2.5),
        (" 10s ", 10),
    ],
)
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty duration"),
        ("60", "has no unit"),
        ("ten seconds", "is not a duration"),
        ("1x", "is not a duration"),
        ("-5s", "is not a duration"),
        ("30s1m", "misorders units"),
        ("1m1m", "misorders units"),
        ("5s ", None),
        ("0s", "longer than zero"),
    ],
)
def test_bad_durations_are_refused_naming_the_flag(text, fragment):
    if fragment is None:  # trailing whitespace is fine
        assert parse_duration(text, source="--duration") == 5
        return
    with pytest.raises(InputError) as info:
        parse_duration(text, source="--duration")
    assert str(info.value).startswith("--duration")
    assert fragment in str(info.value)


def test_zero_is_allowed_where_asked_for_warm_up():
    assert parse_duration("0s", source="--warmup", allow_zero=True) == 0


@pytest.mark.parametrize("seconds", [0.5, 1, 59, 60, 90, 3600, 3723, 2.5])
def test_format_duration_round_trips(seconds):
    text = format_duration(seconds)
    assert parse_duration(text, allow_zero=True) == pytest.approx(seconds)
