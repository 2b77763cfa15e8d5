"""The polling helpers of the controller tests treat "not written yet" as "not yet" (issue
12 item 10: `condition()` raised on an HPA whose controller had not written its status yet,
which failed test_hpa_without_metrics_reports_scaling_inactive on a busy machine)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from .controllers_support import condition, wait_for

READY = {"type": "Ready", "status": "True"}


@pytest.mark.parametrize(
    "obj",
    [
        None,
        {},
        {"metadata": {"name": "metered"}},
        {"status": None},
        {"status": {}},
        SimpleNamespace(status=None),
        SimpleNamespace(status=SimpleNamespace(conditions=None)),
    ],
)
def test_condition_is_none_until_the_status_is_written(obj: Any) -> None:
    assert condition(obj, "ScalingActive") is None


def test_condition_reads_dicts_and_client_models() -> None:
    assert condition({"status": {"conditions": [READY]}}, "Ready") == READY
    model = SimpleNamespace(to_dict=lambda: READY)
    assert condition(SimpleNamespace(status=SimpleNamespace(conditions=[model])), "Ready") == READY


def test_wait_for_retries_while_fields_are_missing_and_reports_the_last_error() -> None:
    states: list[dict[str, Any]] = [{}, {"status": {}}, {"status": {"phase": "Running"}}]
    assert wait_for(lambda: states.pop(0)["status"].get("phase"), timeout=5, interval=0) == (
        "Running"
    )
    with pytest.raises(AssertionError, match="KeyError"):
        wait_for(lambda: {}["status"], timeout=0.05, interval=0.01)
    with pytest.raises(ZeroDivisionError):  # a real error in the test itself still raises
        wait_for(lambda: 1 / 0, timeout=1)
