"""Registry tests: the operator's bounded HTTP policy and a clean MLflow environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubellm.registry import HttpPolicy

#: short enough that a blackholed call ends well within a test, long enough for loopback
POLICY = HttpPolicy(timeout_s=1, max_retries=1, backoff_factor=0)


@pytest.fixture
def bounded_http(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpPolicy]:
    """The operator's kind of HTTP policy, applied to this process for one test."""
    for key, value in POLICY.environment().items():
        monkeypatch.setenv(key, value)
    yield POLICY


@pytest.fixture
def operator_credentials(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The operator's MLflow credentials, in its environment as the chart puts them."""
    for key in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "kubellm-operator")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "operator-s3cret")
    return "kubellm-operator", "operator-s3cret"
