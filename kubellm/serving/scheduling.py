"""Batching decisions of the engine, as pure functions of the engine's state.

The engine loop asks three questions between decode steps: how many waiting requests may
join the running batch now, how much left padding the batch can shed after sequences
left, and whether a sequence has finished. Each answer depends only on numbers the loop
already has, so they live here, unit-tested without a model, and the loop stays a thin
executor of these plans.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

__all__ = ["finish_reason", "leading_padding", "plan_admission", "should_decode"]


def plan_admission(
    running: int,
    waiting_prompt_lens: Sequence[int],
    *,
    max_batch_size: int,
    max_prefill_tokens: int,
) -> int:
    """How many of the waiting requests (in arrival order) join the batch at this step.

    A request joins while the batch has room and the padded prefill (count x longest
    prompt, what one left-padded forward pass really computes) stays within the token
    budget. The first waiting request always joins when there is room, however long its
    prompt, so a long prompt can never starve.
    """
    room = max_batch_size - running
    admitted = 0
    longest = 0
    for length in waiting_prompt_lens:
        if admitted >= room:
            break
        longest_if = max(longest, length)
        if admitted > 0 and (admitted + 1) * longest_if > max_prefill_tokens:
            break
        admitted += 1
        longest = longest_if
    return admitted


def should_decode(
    *, admitted: bool, more_waiting: bool, prefills_in_a_row: int, max_prefills_in_a_row: int
) -> bool:
    """Whether the running batch decodes now, or newcomers are prefilled first.

    A prefill gives each newcomer its first token, so prefilling the requests that arrived
    meanwhile before decoding shortens time to first token during a burst; the cap on
    prefills in a row keeps running sequences from stalling under a steady stream.
    """
    return not (admitted and more_waiting and prefills_in_a_row < max_prefills_in_a_row)


def leading_padding(column_has_token: Sequence[bool]) -> int:
    """Leading KV-cache columns that no sequence of the batch attends to any more.

    ``column_has_token[i]`` tells whether any row of the attention mask is 1 in column
    ``i``. After long sequences leave, the remaining ones are left-padded to a length
    nobody needs; those columns can be cut from the cache.
    """
    for i, has in enumerate(column_has_token):
        if has:
            return i
    return len(column_has_token)


def finish_reason(
    token: int,
    *,
    generated: int,
    max_new_tokens: int,
    eos_ids: Collection[int],
    stopped_by_string: bool,
    context_full: bool,
) -> str | None:
    """``"stop"`` (EOS or a stop string), ``"length"`` (token cap or context) or None."""
    if token in eos_ids or stopped_by_string:
        return "stop"
    if generated >= max_new_tokens or context_full:
        return "length"
    return None
