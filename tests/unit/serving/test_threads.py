"""How many threads a serving pod runs the model with."""

from __future__ import annotations

from kubellm.serving.cli import cpu_budget


def test_a_cpu_limit_caps_the_threads_below_the_node_cores() -> None:
    assert cpu_budget("200000 100000\n", available=64) == 2
    assert cpu_budget("150000 100000", available=64) == 2  # 1.5 CPUs: two threads
    assert cpu_budget("50000 100000", available=64) == 1


def test_without_a_limit_every_available_cpu_is_used() -> None:
    assert cpu_budget("max 100000\n", available=6) == 6
    assert cpu_budget(None, available=6) == 6


def test_the_affinity_wins_when_it_is_smaller_than_the_quota() -> None:
    assert cpu_budget("800000 100000", available=2) == 2
