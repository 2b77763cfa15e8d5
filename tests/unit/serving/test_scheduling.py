"""Batching decisions: who joins the batch, what padding goes, when a sequence ends."""

from __future__ import annotations

from kubellm.serving.scheduling import (
    finish_reason,
    leading_padding,
    plan_admission,
    should_decode,
)


def test_admission_fills_the_free_batch_slots_in_arrival_order() -> None:
    assert plan_admission(30, [5, 5, 5], max_batch_size=32, max_prefill_tokens=1000) == 2


def test_full_batch_admits_nobody() -> None:
    assert plan_admission(32, [5], max_batch_size=32, max_prefill_tokens=1000) == 0


def test_padded_prefill_budget_limits_admission() -> None:
    # 3 x longest(40) = 120 > 100: only two join this step
    assert plan_admission(0, [10, 40, 10, 10], max_batch_size=32, max_prefill_tokens=100) == 2


def test_a_long_prompt_alone_is_admitted_even_over_budget() -> None:
    assert plan_admission(0, [5000, 3], max_batch_size=8, max_prefill_tokens=100) == 1


def test_leading_padding_counts_columns_nobody_attends() -> None:
    assert leading_padding([False, False, True, True]) == 2
    assert leading_padding([True, False]) == 0
    assert leading_padding([]) == 0


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


def test_newcomers_arriving_during_a_prefill_are_prefilled_before_decoding() -> None:
    assert not should_decode(
        admitted=True, more_waiting=True, prefills_in_a_row=1, max_prefills_in_a_row=4
    )


def test_decoding_is_not_starved_by_a_steady_stream_of_newcomers() -> None:
    assert should_decode(
        admitted=True, more_waiting=True, prefills_in_a_row=4, max_prefills_in_a_row=4
    )


def test_without_newcomers_the_batch_decodes() -> None:
    assert should_decode(
        admitted=True, more_waiting=False, prefills_in_a_row=1, max_prefills_in_a_row=4
    )
    assert should_decode(
        admitted=False, more_waiting=True, prefills_in_a_row=0, max_prefills_in_a_row=4
    )
