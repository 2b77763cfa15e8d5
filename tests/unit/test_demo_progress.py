"""The demo gives up on a stalled LLM, not on a slow one."""

from __future__ import annotations

from kubellm.demo.progress import Stall, progress_rows


def _training(step: int) -> list[tuple[str, str]]:
    return progress_rows(
        {"phase": "Training", "training": {"state": "Running", "step": step, "totalSteps": 150}}
    )


def test_a_run_that_keeps_stepping_never_counts_as_stalled() -> None:
    stall = Stall(now=0.0)
    # 20 minutes of training, a step every 4 s: longer than a 600 s timeout in all
    assert max(stall.seen(_training(t // 4), float(t)) for t in range(0, 1200, 2)) < 4.0


def test_unchanged_progress_counts_from_its_last_change() -> None:
    stall = Stall(now=0.0)
    assert stall.seen(_training(10), 5.0) == 0.0
    assert stall.seen(_training(10), 65.0) == 60.0
    assert stall.seen(_training(11), 70.0) == 0.0
    assert stall.seen(_training(11), 700.0) == 630.0
