"""Routing decisions: weighted release choice, endpoint choice, retries, hold bounds."""

from __future__ import annotations

from collections import Counter

import pytest

from kubellm.gateway.routing import (
    Endpoint,
    Failure,
    Route,
    may_hold,
    parse_routes,
    pick_endpoint,
    pick_release,
    retry_after_seconds,
    should_retry,
)

PROD = Route("3", "bot", 90)
CANARY = Route("4", "bot-candidate", 10)


def test_routes_come_from_status_serving_routes() -> None:
    status = {
        "serving": {
            "routes": [
                {"version": "3", "service": "bot", "weight": 90},
                {"version": "4", "service": "bot-candidate", "weight": 10},
            ]
        }
    }
    assert parse_routes("bot", status) == [PROD, CANARY]


def test_malformed_route_entries_are_skipped_not_fatal() -> None:
    status = {
        "serving": {
            "routes": [
                "nonsense",
                {"version": "1", "service": "", "weight": 50},
                {"version": "2", "service": "bot", "weight": -1},
                {"version": "3", "service": "bot", "weight": True},
                {"version": "4", "service": "bot", "weight": "50"},
                {"version": "5", "service": "bot", "weight": 100},
            ]
        }
    }
    assert parse_routes("bot", status) == [Route("5", "bot", 100)]


def test_without_routes_production_takes_everything_on_the_llm_service() -> None:
    assert parse_routes("bot", {"production": {"version": "7"}}) == [Route("7", "bot", 100)]
    assert parse_routes("bot", {}) == []
    assert parse_routes("bot", None) == []


def test_empty_routes_list_means_no_release_even_with_production() -> None:
    """The operator wrote routes: an empty list is its decision, not a gap to fill."""
    assert parse_routes("bot", {"serving": {"routes": []}, "production": {"version": "7"}}) == []


@pytest.mark.parametrize(
    ("r", "expected"), [(0.0, PROD), (0.5, PROD), (0.8999, PROD), (0.9, CANARY), (0.9999, CANARY)]
)
def test_release_is_drawn_by_weight(r: float, expected: Route) -> None:
    ready = {"bot": 1, "bot-candidate": 1}
    assert pick_release([PROD, CANARY], ready, r) == expected


def test_weights_hold_over_many_draws() -> None:
    ready = {"bot": 2, "bot-candidate": 1}
    draws = Counter(pick_release([PROD, CANARY], ready, i / 1000).version for i in range(1000))
    assert draws == {"3": 900, "4": 100}


def test_release_without_ready_endpoints_gives_its_share_to_the_others() -> None:
    assert pick_release([PROD, CANARY], {"bot": 0, "bot-candidate": 1}, 0.1) == CANARY
    assert pick_release([PROD, CANARY], {"bot": 3}, 0.95) == PROD


def test_no_ready_release_means_hold() -> None:
    assert pick_release([PROD, CANARY], {}, 0.5) is None
    assert pick_release([], {"bot": 1}, 0.5) is None


def test_zero_weight_release_never_takes_traffic() -> None:
    idle = Route("4", "bot-candidate", 0)
    ready = {"bot": 1, "bot-candidate": 1}
    assert all(pick_release([PROD, idle], ready, i / 100) == PROD for i in range(100))
    assert pick_release([idle], ready, 0.5) is None


def test_out_of_range_random_numbers_are_clamped() -> None:
    ready = {"bot": 1, "bot-candidate": 1}
    assert pick_release([PROD, CANARY], ready, 1.0) == CANARY
    assert pick_release([PROD, CANARY], ready, -0.5) == PROD


A, B, C = Endpoint("127.0.0.2", 8000), Endpoint("127.0.0.3", 8000), Endpoint("127.0.0.4", 8000)


def test_endpoint_with_fewest_requests_in_flight_is_chosen() -> None:
    assert pick_endpoint([A, B, C], {A: 3, B: 1, C: 2}) == B


def test_tied_endpoints_rotate() -> None:
    picks = [pick_endpoint([A, B, C], {}, turn=t) for t in range(6)]
    assert picks == [A, B, C, A, B, C]


def test_excluded_endpoints_are_never_chosen() -> None:
    assert pick_endpoint([A, B], {B: 5}, exclude=frozenset({A})) == B
    assert pick_endpoint([A], {}, exclude=frozenset({A})) is None
    assert pick_endpoint([], {}) is None


@pytest.mark.parametrize("failure", [Failure.CONNECT, Failure.UNAVAILABLE])
def test_connect_failure_or_503_is_retried_once_on_another_endpoint(failure: Failure) -> None:
    assert should_retry(failure, attempt=1, sent_to_client=False, others=1)
    assert not should_retry(failure, attempt=2, sent_to_client=False, others=1)


def test_no_retry_once_bytes_went_to_the_client() -> None:
    assert not should_retry(Failure.CONNECT, attempt=1, sent_to_client=True, others=3)


def test_no_retry_without_another_endpoint() -> None:
    assert not should_retry(Failure.UNAVAILABLE, attempt=1, sent_to_client=False, others=0)


def test_other_failures_are_not_retried() -> None:
    assert not should_retry(Failure.OTHER, attempt=1, sent_to_client=False, others=2)


def test_hold_queue_is_bounded() -> None:
    assert may_hold(0, 16)
    assert may_hold(15, 16)
    assert not may_hold(16, 16)
    assert not may_hold(0, 0)


def test_retry_after_follows_the_wait_within_bounds() -> None:
    assert retry_after_seconds(0.0, 120) == 1
    assert retry_after_seconds(7.2, 120) == 8
    assert retry_after_seconds(500, 120) == 120
