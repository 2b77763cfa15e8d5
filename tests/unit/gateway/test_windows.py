"""Per-release traffic windows: slots by the second, sums since an instant, the wire form."""

from __future__ import annotations

import pytest

from kubellm.gateway.windows import (
    ReleaseTraffic,
    TrafficWindows,
    bucket_of,
    combine,
    from_json,
    quantile_ms,
    to_json,
)


class Wall:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_only_answers_since_the_instant_are_counted() -> None:
    wall = Wall(1000.2)
    w = TrafficWindows(wall=wall)
    w.record("ns/bot", "3", error=False, seconds=0.1, ttfb=0.01, tokens=10)
    wall.t = 1010.5
    w.record("ns/bot", "3", error=True, seconds=0.2, ttfb=0.02, tokens=None)
    w.record("ns/bot", "4", error=False, seconds=0.3, ttfb=0.03, tokens=30)
    w.record("ns/other", "3", error=False, seconds=0.3, ttfb=0.03, tokens=30)
    whole = w.since("ns/bot", 999.0)
    assert (whole["3"].requests, whole["3"].errors, whole["3"].tokens) == (2, 1, 10)
    late = w.since("ns/bot", 1005.0)
    assert (late["3"].requests, late["3"].errors, late["3"].tokens) == (1, 1, 0)
    assert late["4"].tokens_per_second == 100.0
    assert w.since("ns/bot", 1011.0) == {}


def test_slots_older_than_the_horizon_are_dropped() -> None:
    wall = Wall(1000.0)
    w = TrafficWindows(horizon=60, wall=wall)
    w.record("ns/bot", "3", error=False, seconds=0.1, ttfb=None, tokens=None)
    wall.t = 1100.0
    w.record("ns/bot", "3", error=False, seconds=0.1, ttfb=None, tokens=None)
    assert w.since("ns/bot", 0)["3"].requests == 1


def test_p95_from_the_histogram_is_within_ten_percent() -> None:
    w = TrafficWindows(wall=Wall(5.0))
    for ms in range(1, 101):  # 1..100 ms: p95 is 95 ms
        w.record("ns/bot", "3", error=False, seconds=ms / 1000, ttfb=ms / 2000, tokens=None)
    figures = w.since("ns/bot", 0)["3"]
    assert figures.p95_ms is not None and 95 * 0.9 <= figures.p95_ms <= 95 * 1.1
    assert figures.p95_ttfb_ms is not None and 47.5 * 0.9 <= figures.p95_ttfb_ms <= 47.5 * 1.1
    assert quantile_ms({}, 0.95) is None
    assert bucket_of(0.0) == 0 and bucket_of(1e9) == 250


def test_wire_form_round_trips_and_replicas_add_up() -> None:
    a = ReleaseTraffic(requests=3, errors=1, tokens=9, seconds=1.5, latency={5: 3}, ttfb={2: 3})
    b = ReleaseTraffic(requests=1, latency={5: 1, 9: 0}, ttfb={})
    assert from_json(to_json("i", 1.0, {"3": a})) == {"3": a}
    total = combine([{"3": a}, {"3": b, "4": b}])
    assert total["3"].requests == 4 and total["3"].latency == {5: 4, 9: 0}
    assert total["4"] == b


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"releases": {"3": {"requests": -1}}},
        {"releases": {"3": {"latency": {"x": 1}}}},
        {"releases": {"3": {"seconds": float("nan")}}},
        {"releases": {"3": {"errors": True}}},
    ],
)
def test_malformed_reports_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        from_json(bad)
