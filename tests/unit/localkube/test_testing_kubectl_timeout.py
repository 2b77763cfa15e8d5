"""The test clusters' kubectl wrapper lets kubectl's own `--timeout` expire first."""

from __future__ import annotations

import pytest

from localkube.testing.localkube import parse_duration, process_timeout


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("2m", 120.0), ("1m30s", 90.0), ("1h", 3600.0), ("", None), ("soon", None)],
)
def test_parse_duration_reads_kubectl_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_a_delete_waiting_120s_is_not_killed_at_the_default_60s() -> None:
    args = ("delete", "llm", "--all", "--wait=true", "--timeout=120s")
    assert process_timeout(args, 60) == 150.0


def test_without_its_own_timeout_kubectl_gets_the_default() -> None:
    assert process_timeout(("get", "pods"), 60) == 60
    assert process_timeout(("wait", "--timeout=5s"), 60) == 60
