"""A circuit breaker per tracking server: stop calling a registry that keeps failing.

Every registry call of the operator runs in a worker thread while it holds the lock of
one LLM. When the tracking server is down, each call still costs its full timeout; with
many LLMs on one server, every worker ends up waiting on the same dead address. After
``threshold`` consecutive failures that mean "unreachable", the breaker opens and calls
fail at once for ``cooldown`` seconds; then one trial call goes through (half-open): its
success closes the breaker, its failure opens it for another cooldown. Answers that are
errors (a missing model, a bad request) prove the server is up and count as successes.

Pure: the clock is injected, nothing here does I/O; a lock makes it safe across threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubellm.registry.errors import RegistryUnavailable

__all__ = ["CircuitBreaker", "CircuitOpen"]


class CircuitOpen(RegistryUnavailable):
    """Refused without calling: the tracking server failed too often just now."""


@dataclass
class CircuitBreaker:
    threshold: int = 3
    cooldown: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _failures: int = 0
    _opened_at: float | None = None
    _trial_running: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> str:
        """``closed`` (calls go through), ``open`` (refused) or ``half-open`` (one trial)."""
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self.clock() - self._opened_at < self.cooldown:
            return "open"
        return "half-open"

    def before_call(self, what: str = "registry call") -> None:
        """Raise `CircuitOpen` unless a call may go through now."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return
            if state == "half-open" and not self._trial_running:
                self._trial_running = True
                return
            assert self._opened_at is not None
            left = max(0.0, self.cooldown - (self.clock() - self._opened_at))
            raise CircuitOpen(
                f"{what}: registry unreachable: {self._failures} calls in a row failed; "
                f"not calling it again for {left:.0f} s"
            )

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self.threshold:
                self._opened_at = self.clock()
            self._trial_running = False
