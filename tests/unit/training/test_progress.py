"""Progress lines for `kubectl logs`."""

from __future__ import annotations

from kubellm.training.progress import estimate_eta, format_duration, format_progress


def test_progress_line_has_step_loss_throughput_and_eta() -> None:
    line = format_progress(
        step=40, total=300, loss=4.81234, tokens_per_second=38112.4, eta_seconds=14.2,
        learning_rate=4.93e-4, grad_norm=1.2133,
    )  # fmt: skip
    assert line == (
        "step 40/300 (13%) loss 4.8123 lr 4.93e-04 grad_norm 1.21 tokens/s 38,112 eta 0:00:14"
    )


def test_unknown_figures_are_left_out_or_shown_as_question_marks() -> None:
    line = format_progress(step=1, total=0, loss=None, tokens_per_second=None, eta_seconds=None)
    assert line == "step 1/? eta ?"


def test_durations() -> None:
    assert format_duration(3725) == "1:02:05"
    assert format_duration(float("inf")) == "?"
    assert format_duration(-1) == "?"


def test_eta_uses_the_pace_of_the_steps_this_process_ran() -> None:
    # resumed at step 100 of 300; 50 steps in 10 s -> 150 steps left take 30 s
    assert estimate_eta(step=150, total=300, first_step=100, elapsed=10.0) == 30.0
    assert estimate_eta(step=100, total=300, first_step=100, elapsed=1.0) is None
