"""Batching decisions of the scheduler, as pure functions, and the vocabulary of its plans.

Before each step the scheduler asks: how many waiting requests take a free slot now, how
many prompt tokens of each sequence being prefilled go into this step, and which rows
move to close the holes that finished sequences left (decoding rows must stay in slots
``0..n-1`` so that attention reads them as one block). After the step it asks whether a
sequence has finished. Each answer depends only on numbers the loop already has, so they
live here, unit-tested without a model. The plans speak of prompt ``Chunk``s and of cache
operations (``Grow``, ``Move``, ``Swap``, ``Release``) that the engine executes on its
tensors, in order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

__all__ = [
    "CacheOp",
    "Chunk",
    "Grow",
    "Move",
    "Release",
    "Swap",
    "finish_reason",
    "plan_admission",
    "plan_chunks",
    "plan_compaction",
]


@dataclass(frozen=True)
class Chunk:
    """A run of prompt tokens of one sequence: flat tokens ``[token_start, +length)`` of a
    step, written to ``slot`` from position ``start_pos`` on."""

    token_start: int
    slot: int
    start_pos: int
    length: int


@dataclass(frozen=True)
class Grow:
    """Make room for ``length`` positions per row, copying the ``(slot, positions)`` used."""

    length: int
    used: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Move:
    """Copy the first ``length`` positions of slot ``src`` into slot ``dst``."""

    src: int
    dst: int
    length: int


@dataclass(frozen=True)
class Swap:
    a: int
    len_a: int
    b: int
    len_b: int


@dataclass(frozen=True)
class Release:
    """The slot's sequence left; its memory can go back."""

    slot: int


CacheOp = Grow | Move | Swap | Release


def plan_admission(
    occupied: int,
    waiting_needs: Sequence[int],
    *,
    max_batch_size: int,
    max_cache_tokens: int | None = None,
    reserved_tokens: int = 0,
) -> int:
    """How many of the waiting requests (in arrival order) take a slot at this step.

    ``waiting_needs`` is each request's prompt plus its token cap: the cache positions it
    may fill. A request joins while a slot is free and, with ``max_cache_tokens``, while
    the positions reserved by sequences in the batch plus its own fit the budget. The first
    request always joins an empty batch, so a long one can never starve.
    """
    room = max_batch_size - occupied
    admitted = 0
    reserved = reserved_tokens
    for need in waiting_needs:
        if admitted >= room:
            break
        over_budget = max_cache_tokens is not None and reserved + need > max_cache_tokens
        if over_budget and occupied + admitted > 0:
            break
        admitted += 1
        reserved += need
    return admitted


def plan_chunks(
    n_decode: int, remaining: Sequence[int], *, token_budget: int, min_chunk: int
) -> list[int]:
    """Prompt tokens of each prefilling sequence (first come, first served) in this step.

    A step computes one token per decoding row plus prompt chunks, up to ``token_budget``
    tokens, which bounds how long a long prompt can pause the decoding rows. Prefill
    always progresses by at least ``min_chunk`` tokens, however many rows decode.
    """
    budget = max(token_budget - n_decode, min_chunk)
    out: list[int] = []
    for left in remaining:
        if budget <= 0:
            break
        take = min(left, budget)
        out.append(take)
        budget -= take
    return out


def plan_compaction(n_rows: int, leaving: Collection[int]) -> list[tuple[int, int]]:
    """Moves ``(src, dst)`` that keep the remaining rows in slots ``0..n-1``.

    Each hole left below the new row count is filled by one of the remaining rows above
    it, so a leaving sequence costs one row copy, never a copy of the whole batch.
    """
    keep = n_rows - len(leaving)
    holes = sorted(i for i in leaving if i < keep)
    movers = [i for i in range(keep, n_rows) if i not in leaving]
    return list(zip(movers, holes, strict=True))


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
