"""The demand report: wire format, validation of what the operator reads, combination."""

from __future__ import annotations

import pytest

from kubellm.gateway.demand import DemandReport, LLMDemand, combine, from_json, to_json


def test_report_round_trips_through_json() -> None:
    report = DemandReport(
        instance="a1b2",
        seq=4,
        uptime_seconds=12.5,
        llms={
            "ns/bot": LLMDemand(
                inflight=2,
                held=3,
                idle_seconds=0.0,
                holding_seconds=1.5,
                cold_starts=1,
                last_cold_start_seconds=6.25,
                last_cold_start_at="2026-11-30T10:00:00Z",
            ),
            "ns/quiet": LLMDemand(idle_seconds=300.0),
        },
    )
    wire = to_json(report)
    assert wire["llms"]["ns/bot"]["lastColdStartSeconds"] == 6.25
    assert "lastColdStartSeconds" not in wire["llms"]["ns/quiet"]
    assert from_json(wire) == report


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"llms": []},
        {"llms": {"no-slash": {}}},
        {"llms": {"ns/bot": {"held": -1}}},
        {"llms": {"ns/bot": {"held": True}}},
        {"llms": {"ns/bot": {"inflight": 1.5}}},
        {"llms": {"ns/bot": {"idleSeconds": "NaN"}}},
        {"llms": {"ns/bot": {"idleSeconds": float("inf")}}},
        {"llms": {"ns/bot": {"lastColdStartSeconds": -2}}},
        {"seq": "7"},
        {"instance": 7},
    ],
)
def test_malformed_reports_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        from_json(bad)


def test_replicas_add_up_and_the_least_idle_one_counts() -> None:
    a = DemandReport(
        "a",
        1,
        100.0,
        {
            "ns/bot": LLMDemand(
                inflight=1,
                held=0,
                idle_seconds=0.0,
                cold_starts=1,
                last_cold_start_seconds=9.0,
                last_cold_start_at="2026-11-30T09:00:00Z",
            )
        },
    )
    b = DemandReport(
        "b",
        5,
        100.0,
        {
            "ns/bot": LLMDemand(
                inflight=0,
                held=4,
                idle_seconds=50.0,
                holding_seconds=2.0,
                cold_starts=2,
                last_cold_start_seconds=4.0,
                last_cold_start_at="2026-11-30T10:00:00Z",
            )
        },
    )
    got = combine([a, b])["ns/bot"]
    assert (got.inflight, got.held, got.idle_seconds, got.holding_seconds) == (1, 4, 0.0, 2.0)
    assert (got.cold_starts, got.last_cold_start_seconds) == (3, 4.0)


def test_a_replica_that_has_not_seen_an_llm_bounds_its_idleness_by_its_uptime() -> None:
    old = DemandReport("old", 1, 3600.0, {"ns/bot": LLMDemand(idle_seconds=3000.0)})
    fresh = DemandReport("fresh", 0, 20.0, {})
    assert combine([old, fresh])["ns/bot"].idle_seconds == 20.0
    assert combine([]) == {}
