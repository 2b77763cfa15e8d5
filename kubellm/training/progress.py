"""Progress on stdout, one line per logging step, for ``kubectl logs``.

A training pod's log is what a person reads first when a run is slow or stuck, so each
line says where it is (step/total), whether it learns (loss), how fast (tokens/s) and when
it will end (ETA). Formatting is a pure function; the callback only feeds it and prints on
the main process (every rank would otherwise print the same line).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback

__all__ = ["ProgressCallback", "StepClock", "format_duration", "format_progress"]


def format_duration(seconds: float | None) -> str:
    """``3725`` -> ``1:02:05``; unknown -> ``?``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def format_progress(
    *,
    step: int,
    total: int,
    loss: float | None,
    tokens_per_second: float | None,
    eta_seconds: float | None,
    learning_rate: float | None = None,
    grad_norm: float | None = None,
) -> str:
    """``step 40/300 (13%) loss 4.8121 lr 4.93e-04 grad_norm 1.21 tokens/s 38,112 eta 0:00:14``."""
    pct = f" ({100 * step // total}%)" if total > 0 else ""
    parts = [f"step {step}/{total if total > 0 else '?'}{pct}"]
    if loss is not None:
        parts.append(f"loss {loss:.4f}")
    if learning_rate is not None:
        parts.append(f"lr {learning_rate:.2e}")
    if grad_norm is not None:
        parts.append(f"grad_norm {grad_norm:.3g}")
    if tokens_per_second is not None:
        parts.append(f"tokens/s {tokens_per_second:,.0f}")
    parts.append(f"eta {format_duration(eta_seconds)}")
    return " ".join(parts)


def estimate_eta(step: int, total: int, first_step: int, elapsed: float) -> float | None:
    """Seconds left, from the pace of the steps this process ran (a resumed run starts late)."""
    done = step - first_step
    if done <= 0 or total <= 0:
        return None
    return (total - step) * elapsed / done


@dataclass
class StepClock:
    """Tokens and time of the optimizer steps this process ran.

    ``tokens_per_step`` counts every rank's tokens (global batch x sequence length), so the
    figure is the job's throughput, not one GPU's.
    """

    tokens_per_step: int
    first_step: int | None = None
    started: float | None = None
    last_step: int = 0
    last_time: float = 0.0
    window_step: int = 0
    window_time: float = 0.0

    def start(self, step: int) -> None:
        self.first_step = step
        self.started = self.last_time = self.window_time = time.perf_counter()
        self.last_step = self.window_step = step

    def tick(self, step: int) -> None:
        self.last_step = step
        self.last_time = time.perf_counter()

    @property
    def steps_run(self) -> int:
        return 0 if self.first_step is None else self.last_step - self.first_step

    @property
    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.last_time - self.started

    def overall_tokens_per_second(self) -> float | None:
        if self.elapsed <= 0:
            return None
        return self.steps_run * self.tokens_per_step / self.elapsed

    def window_tokens_per_second(self) -> float | None:
        """Throughput since the previous call (recent pace, for progress lines)."""
        steps = self.last_step - self.window_step
        seconds = self.last_time - self.window_time
        self.window_step, self.window_time = self.last_step, self.last_time
        if steps <= 0 or seconds <= 0:
            return None
        return steps * self.tokens_per_step / seconds


class ProgressCallback(TrainerCallback):  # type: ignore[misc]
    """Times steps and prints a progress line at each log on the main process."""

    def __init__(self, clock: StepClock, print_fn: Any = print) -> None:
        self.clock = clock
        self.print_fn = print_fn
        self.last_tokens_per_second: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.clock.start(state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        self.clock.tick(state.global_step)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        logs = logs or {}
        if "loss" not in logs:
            return  # eval and end-of-training summaries have their own lines
        self.last_tokens_per_second = self.clock.window_tokens_per_second()
        logs["tokens_per_second"] = self.last_tokens_per_second
        if not state.is_world_process_zero:
            return
        first = self.clock.first_step or 0
        eta = estimate_eta(state.global_step, state.max_steps, first, self.clock.elapsed)
        line = format_progress(
            step=state.global_step,
            total=state.max_steps,
            loss=logs.get("loss"),
            learning_rate=logs.get("learning_rate"),
            grad_norm=logs.get("grad_norm"),
            tokens_per_second=self.last_tokens_per_second,
            eta_seconds=eta,
        )
        self.print_fn(line, flush=True)
