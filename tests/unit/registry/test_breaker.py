"""The per-server circuit breaker: opens after consecutive failures, fails fast, probes."""

from __future__ import annotations

import pytest

from kubellm.registry import CircuitBreaker, CircuitOpen, RegistryUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.before_call()
        breaker.record_failure()


def test_opens_after_threshold_consecutive_failures_and_fails_fast() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=30, clock=clock)
    _fail(breaker, 2)
    assert breaker.state == "closed"
    _fail(breaker, 1)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen, match="not calling it again for 30 s") as info:
        breaker.before_call("resolve bot@candidate")
    assert isinstance(info.value, RegistryUnavailable)  # callers treat it as "down"
    assert "resolve bot@candidate" in str(info.value)


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=30, clock=Clock())
    _fail(breaker, 1)
    breaker.before_call()
    breaker.record_success()
    _fail(breaker, 1)
    assert breaker.state == "closed"


def test_after_the_cooldown_one_trial_call_goes_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown=10, clock=clock)
    _fail(breaker, 1)
    clock.now = 10.0
    assert breaker.state == "half-open"
    breaker.before_call()  # the trial
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller meanwhile
    breaker.record_success()
    assert breaker.state == "closed"
    breaker.before_call()


def test_a_failed_trial_opens_it_for_another_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=clock)
    _fail(breaker, 3)
    clock.now = 12.0
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now = 21.0
    assert breaker.state == "open"
    clock.now = 22.0
    assert breaker.state == "half-open"
