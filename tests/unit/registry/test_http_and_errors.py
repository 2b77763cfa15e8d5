"""The operator's HTTP policy for MLflow, and how registry failures are named."""

from __future__ import annotations

import errno

import pytest
import requests
from mlflow.exceptions import MlflowException

from kubellm.registry import DiskFull, HttpPolicy, ModelNotFound, RegistryUnavailable
from kubellm.registry.client import _mapped_errors


def test_policy_sets_mlflows_variables_and_bounds_a_call() -> None:
    env: dict[str, str] = {}
    policy = HttpPolicy(timeout_s=5, max_retries=1, backoff_factor=1)
    policy.apply(env)
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert env["MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER"] == "false"  # no server-set sleeps
    assert env["MLFLOW_ALLOW_HTTP_REDIRECTS"] == "false"  # no way off the allowed servers
    assert policy.worst_case_s == 20  # 2 attempts x (connect + read) x 5 s, no backoff yet
    assert HttpPolicy(timeout_s=2, max_retries=3, backoff_factor=1).worst_case_s == 16 + 2 + 4
    with pytest.raises(ValueError):
        HttpPolicy(max_retries=11)


def _raise(exc: BaseException) -> None:
    raise exc


def test_a_full_disk_is_a_full_disk_not_an_unreachable_registry() -> None:
    with (
        pytest.raises(DiskFull, match="disk full") as info,
        _mapped_errors("download models:/bot/3"),
    ):
        _raise(OSError(errno.ENOSPC, "No space left on device"))
    assert not isinstance(info.value, RegistryUnavailable)
    # MLflow wraps it in its own exception, with the OSError as context
    with pytest.raises(DiskFull), _mapped_errors("download models:/bot/3"):
        try:
            _raise(OSError(errno.ENOSPC, "No space left on device"))
        except OSError as exc:
            raise MlflowException(f"failed to download: {exc}") from None


def test_connection_and_timeout_failures_are_unavailable_and_redacted() -> None:
    for cause in (requests.ConnectionError("refused"), requests.ReadTimeout("read timed out")):
        with (
            pytest.raises(RegistryUnavailable) as info,
            _mapped_errors("resolve bot@candidate"),
        ):
            try:
                _raise(cause)
            except requests.RequestException as exc:
                raise MlflowException(
                    f"API request to http://alice:hunter2@mlflow:5000/api failed with "
                    f"timeout exception {exc}"
                ) from exc
        assert "hunter2" not in str(info.value) and "http://***@mlflow:5000" in str(info.value)


def test_missing_models_stay_not_found() -> None:
    with pytest.raises(ModelNotFound), _mapped_errors("get bot/9"):
        _raise(MlflowException("not found", error_code="RESOURCE_DOES_NOT_EXIST"))
