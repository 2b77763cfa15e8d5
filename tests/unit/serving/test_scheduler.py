"""The engine's scheduler without torch or a model: admission, chunked prefill, finishing
once, cancellation, failures, and the cache operations that leaving and joining imply."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

import pytest

from kubellm.serving.errors import EngineFailure, ModelNotReady, Overloaded
from kubellm.serving.scheduler import Scheduler, SchedulerConfig, StepOutput, StepPlan
from kubellm.serving.scheduling import Grow, Move, Release
from kubellm.serving.streams import (
    ErrorEvent,
    Event,
    FinishEvent,
    RequestStream,
    SamplingParams,
    TokenEvent,
)

GREEDY = SamplingParams(temperature=0.0)
EOS = 0


def _decode(ids: Sequence[int]) -> str:
    """One letter per token id (1 -> "a", 2 -> "b", ...)."""
    return "".join(chr(ord("a") + (i - 1) % 26) for i in ids)


def _scheduler(context_len: int = 1000, **config: int) -> Scheduler:
    return Scheduler(
        SchedulerConfig(**config),  # type: ignore[arg-type]
        context_len=context_len,
        eos_ids={EOS},
        decode=_decode,
    )


def _submit(
    s: Scheduler, prompt_len: int, max_new: int = 10, params: SamplingParams = GREEDY
) -> RequestStream:
    stream = RequestStream(None)
    s.submit(stream, list(range(1, prompt_len + 1)), params, max_new)
    return stream


def _step(s: Scheduler, token: int = 5, capacity: int = 10_000) -> StepPlan:
    """Plan a step and report ``token`` for every sampled row."""
    plan = s.schedule(capacity)
    s.update(plan, StepOutput(tokens=[token] * len(plan.sampled)))
    return plan


def _events(s: Scheduler, stream: RequestStream) -> list[Event]:
    return [e for st, e in s.outbox if st is stream]


def _last_events(s: Scheduler) -> list[Event]:
    return [e for _, e in s.outbox if not isinstance(e, TokenEvent)]


def test_the_scheduler_imports_no_torch() -> None:
    code = "import sys, kubellm.serving.scheduler; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_admission_fills_free_slots_in_arrival_order_from_the_top() -> None:
    s = _scheduler(max_batch_size=2)
    streams = [_submit(s, 3) for _ in range(3)]
    plan = s.schedule(capacity=100)
    assert [r.stream for r in s.prefilling] == streams[:2]
    assert [r.slot for r in s.prefilling] == [1, 0]
    assert [r.stream for r in s.waiting] == streams[2:]
    assert plan.tokens == [1, 2, 3, 1, 2, 3]  # both prompts in one step
    assert [c.slot for c in plan.chunks] == [1, 0]


def test_a_full_queue_refuses_with_overloaded() -> None:
    s = _scheduler(max_queue=2)
    _submit(s, 3)
    _submit(s, 3)
    with pytest.raises(Overloaded):
        _submit(s, 3)


def test_a_request_longer_than_the_cache_grows_it_before_the_step() -> None:
    s = _scheduler(context_len=4096)
    _submit(s, 300, max_new=400)
    plan = s.schedule(capacity=256)
    assert plan.cache_ops == [Grow(700, ((31, 0),))]  # slot 31: admitted from the top


def test_chunked_prefill_keeps_every_step_within_the_token_budget() -> None:
    s = _scheduler(max_step_tokens=8, min_prefill_chunk=2)
    decoder = _submit(s, 2, max_new=50)
    _step(s)  # the short prompt is prefilled and decodes from now on
    assert len(s.running) == 1
    long = _submit(s, 20, max_new=5)
    sizes, decoded = [], []
    for _ in range(10):
        plan = _step(s)
        assert len(plan.tokens) <= 8
        sizes += [c.length for c in plan.chunks]
        decoded.append(len(plan.decoding))
        if len(s.running) == 2:
            break
    assert sizes == [7, 7, 6]  # one token of each step went to the decoding row
    assert decoded == [1, 1, 1]
    assert [r.stream for r in s.running] == [decoder, long]
    assert [r.slot for r in s.running] == [0, 1]


def test_prefill_progresses_when_decoding_rows_fill_the_budget() -> None:
    s = _scheduler(max_step_tokens=4, min_prefill_chunk=2)
    for _ in range(4):
        _submit(s, 1, max_new=50)
    _step(s)
    assert len(s.running) == 4
    _submit(s, 6)
    plan = _step(s)
    assert len(plan.decoding) == 4 and [c.length for c in plan.chunks] == [2]


def test_a_completed_prompt_is_sampled_and_joins_after_the_decoding_rows() -> None:
    s = _scheduler(max_batch_size=4)
    _submit(s, 2, max_new=50)
    plan = s.schedule(capacity=100)
    assert s.update(plan, StepOutput(tokens=[5])) == [Move(3, 0, 2), Release(3)]
    _submit(s, 3)
    plan = s.schedule(capacity=100)
    assert plan.keep == [0, 3]  # the decoding row and the prompt's last token
    assert s.update(plan, StepOutput(tokens=[5, 6])) == [Move(3, 1, 3), Release(3)]
    assert [r.slot for r in s.running] == [0, 1]
    assert s.running[1].generated == [6]


def test_eos_finishes_with_stop_once_even_if_cancelled_later() -> None:
    s = _scheduler()
    stream = _submit(s, 2, max_new=10)
    _step(s, token=7)
    _step(s, token=EOS)
    stream.cancel()
    _step(s)
    finishes = [e for e in _events(s, stream) if not isinstance(e, TokenEvent)]
    assert finishes == [FinishEvent("stop", 2, 2)]
    assert not s.has_work


def test_the_token_cap_finishes_with_length_and_frees_the_slot() -> None:
    s = _scheduler()
    stream = _submit(s, 2, max_new=3)
    for _ in range(3):
        _step(s, token=4)
    text = "".join(e.text for e in _events(s, stream) if isinstance(e, TokenEvent))
    assert text == "ddd"
    assert _events(s, stream)[-1] == FinishEvent("length", 2, 3)
    assert not s.running


def test_a_stop_string_ends_the_text_before_it() -> None:
    s = _scheduler()
    stream = _submit(s, 2, max_new=10, params=SamplingParams(temperature=0.0, stop=("cd",)))
    for token in (1, 2, 3, 4, 5):
        _step(s, token=token)
    events = _events(s, stream)
    assert "".join(e.text for e in events if isinstance(e, TokenEvent)) == "ab"
    assert events[-1] == FinishEvent("stop", 2, 4)


def test_ignore_eos_generates_up_to_the_cap() -> None:
    s = _scheduler()
    stream = _submit(s, 2, max_new=3, params=SamplingParams(temperature=0.0, ignore_eos=True))
    for _ in range(3):
        _step(s, token=EOS)
    assert _events(s, stream)[-1] == FinishEvent("length", 2, 3)


def test_cancelled_requests_leave_every_queue_before_the_next_step() -> None:
    s = _scheduler(max_batch_size=2, max_step_tokens=4, min_prefill_chunk=1)
    running = _submit(s, 1, max_new=50)
    _step(s)
    prefilling = _submit(s, 10)
    waiting = _submit(s, 3)
    _step(s)  # `prefilling` has a chunk in; `waiting` waits for a slot
    assert len(s.prefilling) == 1 and len(s.waiting) == 1
    for stream in (running, prefilling, waiting):
        stream.cancel()
    s.outbox.clear()
    plan = s.schedule(capacity=100)
    assert not plan.tokens and not s.has_work
    assert sorted(plan.cache_ops, key=repr) == sorted([Release(0), Release(1)], key=repr)
    assert _last_events(s) == [
        FinishEvent("cancelled", 3, 0),
        FinishEvent("cancelled", 10, 0),
        FinishEvent("cancelled", 1, 2),
    ]


def test_a_leaving_row_is_refilled_from_the_top_with_one_move() -> None:
    s = _scheduler(max_batch_size=4)
    streams = [_submit(s, 2, max_new=50) for _ in range(3)]
    _step(s)
    assert [r.slot for r in s.running] == [0, 1, 2]
    streams[0].cancel()
    plan = s.schedule(capacity=100)
    assert plan.cache_ops == [Move(2, 0, 2), Release(2)]  # the prompt; its token is not in yet
    assert [r.stream for r in s.running] == [streams[2], streams[1]]
    assert plan.decoding == s.running


def test_a_failed_step_with_newcomers_retries_each_alone_and_fails_only_the_culprit() -> None:
    s = _scheduler(max_batch_size=4)
    decoder = _submit(s, 2, max_new=50)
    _step(s)
    good, bad = _submit(s, 3), _submit(s, 4)
    plan = s.schedule(capacity=100)
    assert len(plan.chunks) == 2
    s.update(plan, StepOutput(error=RuntimeError("boom")))
    assert not _last_events(s)  # nobody is blamed yet
    alone = s.schedule(capacity=100)  # the first suspect, alone: no decoding rows
    assert [r.stream for r in alone.chunked] == [good] and not alone.decoding
    s.update(alone, StepOutput(tokens=[5]))
    alone = s.schedule(capacity=100)
    assert [r.stream for r in alone.chunked] == [bad] and not alone.decoding
    s.update(alone, StepOutput(error=RuntimeError("boom")))
    errors = [(st, e) for st, e in s.outbox if isinstance(e, ErrorEvent)]
    assert [st for st, _ in errors] == [bad]
    assert isinstance(errors[0][1].error, EngineFailure)
    assert [r.stream for r in s.running] == [decoder, good]
    plan = _step(s)
    assert len(plan.decoding) == 2  # the others carry on


def test_a_failed_decode_only_step_fails_its_rows() -> None:
    s = _scheduler()
    streams = [_submit(s, 2) for _ in range(2)]
    _step(s)
    plan = s.schedule(capacity=100)
    ops = s.update(plan, StepOutput(error=RuntimeError("boom")))
    assert sorted(ops, key=repr) == [Release(0), Release(1)]
    assert [st for st, e in s.outbox if isinstance(e, ErrorEvent)] == streams
    assert not s.has_work


def test_one_failing_detokenisation_fails_only_its_request() -> None:
    calls = {"n": 0}

    def flaky(ids: Sequence[int]) -> str:
        if 9 in ids:
            raise UnicodeError("bad bytes")
        calls["n"] += 1
        return _decode(ids)

    s = Scheduler(SchedulerConfig(), context_len=100, eos_ids={EOS}, decode=flaky)
    ok, poisoned = RequestStream(None), RequestStream(None)
    s.submit(ok, [1, 2], GREEDY, 5)
    s.submit(poisoned, [1, 2], GREEDY, 5)
    plan = s.schedule(capacity=100)
    s.update(plan, StepOutput(tokens=[3, 9]))
    assert isinstance(_events(s, poisoned)[-1], ErrorEvent)
    assert [r.stream for r in s.running] == [ok]


def test_shutdown_ends_every_request_once_with_the_reason() -> None:
    s = _scheduler(max_batch_size=1)
    first, second = _submit(s, 2, max_new=1), _submit(s, 2)
    _step(s)  # `first` finishes with its one token; `second` is admitted next
    s.schedule(capacity=100)
    s.abort_all(ModelNotReady("the server is shutting down"))
    assert [type(e) for e in _events(s, first)] == [TokenEvent, FinishEvent]
    ends = _events(s, second)
    assert len(ends) == 1 and isinstance(ends[0], ErrorEvent)
    assert not s.has_work


def test_the_context_bounds_the_tokens_generated() -> None:
    s = _scheduler(context_len=5)
    stream = _submit(s, 3, max_new=10)
    for _ in range(3):
        _step(s)
    assert _events(s, stream)[-1] == FinishEvent("length", 3, 2)
