"""Batching decisions: who takes a slot, how prompts are chunked, which rows move, when a
sequence ends."""

from __future__ import annotations

from kubellm.serving.scheduling import (
    finish_reason,
    plan_admission,
    plan_chunks,
    plan_compaction,
)


def test_admission_fills_the_free_slots_in_arrival_order() -> None:
    assert plan_admission(30, [5, 5, 5], max_batch_size=32) == 2


def test_full_batch_admits_nobody() -> None:
    assert plan_admission(32, [5], max_batch_size=32) == 0


def test_cache_budget_limits_admission() -> None:
    # 100 reserved + 60 + 60 > 200: only one joins
    assert (
        plan_admission(
            2, [60, 60, 10], max_batch_size=32, max_cache_tokens=200, reserved_tokens=100
        )
        == 1
    )


def test_a_request_larger_than_the_budget_still_runs_alone() -> None:
    assert plan_admission(0, [5000, 3], max_batch_size=8, max_cache_tokens=100) == 1
    assert plan_admission(1, [5000], max_batch_size=8, max_cache_tokens=100, reserved_tokens=9) == 0


def test_prompt_chunks_fill_the_step_budget_first_come_first_served() -> None:
    # 6 decoding rows leave 10 of 16 tokens: the first prompt takes 7, the next 3
    assert plan_chunks(6, [7, 50, 4], token_budget=16, min_chunk=2) == [7, 3]


def test_a_long_prompt_is_cut_into_budget_sized_chunks() -> None:
    assert plan_chunks(0, [1000], token_budget=256, min_chunk=32) == [256]


def test_prefill_progresses_even_when_decoding_rows_fill_the_budget() -> None:
    assert plan_chunks(64, [100, 100], token_budget=32, min_chunk=8) == [8]


def test_nothing_to_prefill_plans_no_chunk() -> None:
    assert plan_chunks(4, [], token_budget=32, min_chunk=8) == []


def test_leaving_rows_are_refilled_from_the_top_one_move_each() -> None:
    # rows 0..5; 1 and 4 leave: row 5 moves into hole 1, hole 4 is beyond the new end
    assert plan_compaction(6, [1, 4]) == [(5, 1)]
    assert plan_compaction(6, [0, 1]) == [(4, 0), (5, 1)]


def test_the_last_rows_leaving_need_no_move() -> None:
    assert plan_compaction(4, [2, 3]) == []
    assert plan_compaction(3, [0, 1, 2]) == []


def test_eos_finishes_with_stop() -> None:
    kw = dict(generated=3, max_new_tokens=10, eos_ids={0}, context_full=False)
    assert finish_reason(0, stopped_by_string=False, **kw) == "stop"  # type: ignore[arg-type]


def test_stop_string_finishes_with_stop_even_at_the_token_cap() -> None:
    assert (
        finish_reason(
            5,
            generated=10,
            max_new_tokens=10,
            eos_ids={0},
            stopped_by_string=True,
            context_full=False,
        )
        == "stop"
    )


def test_token_cap_or_full_context_finishes_with_length() -> None:
    common = dict(eos_ids={0}, stopped_by_string=False)
    assert finish_reason(5, generated=10, max_new_tokens=10, context_full=False, **common) == (  # type: ignore[arg-type]
        "length"
    )
    assert finish_reason(5, generated=1, max_new_tokens=10, context_full=True, **common) == (  # type: ignore[arg-type]
        "length"
    )
    assert finish_reason(5, generated=1, max_new_tokens=10, context_full=False, **common) is None  # type: ignore[arg-type]
