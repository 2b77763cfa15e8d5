"""How long a registry call may take: MLflow's HTTP timeouts and retries, bounded.

MLflow's REST client retries 7 times with exponential backoff (2 s factor) and waits 120 s
per attempt by default, and honours a server's ``Retry-After``: one call to a refused port
takes minutes, and one to a blackholed address waits out every attempt's timeout. That
suits a training script that must not lose its run; it does not suit the operator, whose
every call holds a worker and the lock of one LLM, and whose reconcile loop retries
anyway. The client reads these settings from the environment at every request, so a policy
is applied process-wide (`HttpPolicy.apply`): the operator applies its own at start-up,
workloads keep MLflow's.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass

__all__ = ["HttpPolicy"]


@dataclass(frozen=True)
class HttpPolicy:
    #: seconds to connect, and again to read an answer (MLflow takes whole seconds)
    timeout_s: int = 5
    #: retries after the first attempt (connection errors, timeouts, 429/5xx answers)
    max_retries: int = 1
    #: exponential backoff factor between retries, seconds (0: retry at once)
    backoff_factor: int = 1
    #: a redirect could lead the client (and its credentials) off the allowed servers
    allow_redirects: bool = False

    def __post_init__(self) -> None:
        if self.timeout_s < 1:
            raise ValueError("timeout_s: at least 1 second (MLflow takes whole seconds)")
        if not 0 <= self.max_retries <= 10:
            raise ValueError("max_retries: between 0 and 10")
        if self.backoff_factor < 0:
            raise ValueError("backoff_factor: not negative")

    @property
    def worst_case_s(self) -> float:
        """An upper bound of one call's duration against a server that never answers
        (connect and read timeouts of every attempt, plus the backoff sleeps)."""
        attempts = self.max_retries + 1
        sleeps = sum(self.backoff_factor * 2**i for i in range(1, self.max_retries))
        return attempts * 2 * self.timeout_s + sleeps

    def environment(self) -> dict[str, str]:
        """The MLflow variables that carry this policy."""
        return {
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.timeout_s),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.max_retries),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(self.backoff_factor),
            "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
            "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
            "MLFLOW_ALLOW_HTTP_REDIRECTS": "true" if self.allow_redirects else "false",
        }

    def apply(self, env: MutableMapping[str, str] | None = None) -> None:
        """Set the policy for every MLflow client of this process (or into ``env``)."""
        target = os.environ if env is None else env
        target.update(self.environment())
