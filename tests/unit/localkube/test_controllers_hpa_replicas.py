"""HPA arithmetic: quantities, desired replicas with tolerance, clamps, stabilization."""

from __future__ import annotations

import pytest

from localkube.controllers.replicas import (
    clamp,
    desired_replicas,
    metric_from_text,
    parse_quantity,
    stabilize,
)


def test_quantities():
    assert parse_quantity("500m") == 0.5
    assert parse_quantity("2") == 2.0
    assert parse_quantity("1.5k") == 1500.0
    assert parse_quantity("128Mi") == 128 * 2**20
    assert parse_quantity(3) == 3.0
    with pytest.raises(ValueError):
        parse_quantity("lots")


def test_desired_is_ceil_of_current_times_ratio_and_the_largest_metric_wins():
    assert desired_replicas(2, [10 / 4]) == 5
    assert desired_replicas(4, [0.5]) == 2
    assert desired_replicas(2, [1.5, 3.0]) == 6


def test_ratio_within_tolerance_keeps_current():
    assert desired_replicas(3, [1.08]) == 3
    assert desired_replicas(3, [0.92]) == 3


def test_clamp_names_the_limit():
    assert clamp(12, 1, 5) == (5, "TooManyReplicas")
    assert clamp(0, 1, 5) == (1, "TooFewReplicas")
    assert clamp(3, 1, 5) == (3, "")


def test_scale_down_takes_the_highest_recommendation_in_the_window():
    history = [(0.0, 6), (50.0, 4)]
    assert stabilize(history, 100.0, 2, current=6, down_window=300, up_window=0) == 6
    assert stabilize(history, 400.0, 2, current=6, down_window=300, up_window=0) == 2
    assert stabilize([], 0.0, 8, current=2, down_window=300, up_window=0) == 8


def test_metric_is_summed_over_label_sets_and_total_suffix():
    text = (
        "# TYPE kubellm_queue gauge\n"
        'kubellm_queue{model="a"} 3\n'
        'kubellm_queue{model="b"} 2\n'
        "# TYPE reqs counter\n"
        "reqs_total 7\n"
    )
    assert metric_from_text(text, "kubellm_queue") == 5.0
    assert metric_from_text(text, "reqs") == 7.0
    assert metric_from_text(text, "missing") is None
