"""The slot KV cache and its attention, checked against plain attention without a model."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from kubellm.serving.kvslots import SlotCache, Step, slot_attention
from kubellm.serving.scheduling import Chunk

HEADS, KV_HEADS, DIM = 4, 2, 8
LAYER = SimpleNamespace(layer_idx=0)


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """Plain attention of one sequence: q [heads, n, d] over k, v [kv, L, d] -> [n, heads, d]."""
    groups = HEADS // KV_HEADS
    k, v = k.repeat_interleave(groups, 0), v.repeat_interleave(groups, 0)
    scores = q @ k.transpose(1, 2) / DIM**0.5
    if causal:
        n, length = q.shape[1], k.shape[1]
        allowed = torch.arange(length)[None, :] <= torch.arange(length - n, length)[:, None]
        scores = scores.masked_fill(~allowed, float("-inf"))
    return (scores.softmax(-1) @ v).transpose(0, 1)


def _run(cache: SlotCache, decode_lens: list[int], chunks: list[Chunk], q, k, v):  # type: ignore[no-untyped-def]
    step = Step.build(cache, decode_lens, chunks, "cpu")
    out, _ = slot_attention(LAYER, q, k, v, None, scaling=DIM**-0.5, kubellm_step=step)
    return out[0]


def test_chunked_prefill_then_batched_decode_equal_plain_attention() -> None:
    torch.manual_seed(0)
    cache = SlotCache(rows=4, capacity=256)
    lens = {2: 5, 3: 9}  # slot -> prompt length; prefilled in chunks of 3
    keys = {s: torch.randn(KV_HEADS, n + 1, DIM) for s, n in lens.items()}
    values = {s: torch.randn(KV_HEADS, n + 1, DIM) for s, n in lens.items()}
    queries = {s: torch.randn(HEADS, n + 1, DIM) for s, n in lens.items()}
    for start in range(0, 9, 3):
        chunks: list[Chunk] = []
        qs: list[torch.Tensor] = []
        ks: list[torch.Tensor] = []
        vs: list[torch.Tensor] = []
        for slot, n in lens.items():
            if start >= n:
                continue
            size = min(3, n - start)
            chunks.append(Chunk(sum(c.length for c in chunks), slot, start, size))
            qs.append(queries[slot][:, start : start + size])
            ks.append(keys[slot][:, start : start + size])
            vs.append(values[slot][:, start : start + size])
        out = _run(cache, [], chunks, torch.cat(qs, 1)[None], torch.cat(ks, 1)[None],
                   torch.cat(vs, 1)[None])  # fmt: skip
        for c, q in zip(chunks, qs, strict=True):
            end = c.start_pos + c.length
            expected = _reference(q, keys[c.slot][:, :end], values[c.slot][:, :end], causal=True)
            got = out[c.token_start : c.token_start + c.length]
            torch.testing.assert_close(got, expected)
    # both move to decoding: slot 2 -> row 0, slot 3 -> row 1; one new token each
    cache.move(2, 0, 5)
    cache.move(3, 1, 9)
    q = torch.stack([queries[2][:, 5], queries[3][:, 9]], 1)[None]
    k = torch.stack([keys[2][:, 5], keys[3][:, 9]], 1)[None]
    v = torch.stack([values[2][:, 5], values[3][:, 9]], 1)[None]
    out = _run(cache, [6, 10], [], q, k, v)
    for row, slot in enumerate((2, 3)):
        n = lens[slot] + 1
        expected = _reference(queries[slot][:, n - 1 : n], keys[slot], values[slot], causal=False)
        torch.testing.assert_close(out[row : row + 1], expected)


def test_decode_rows_read_only_their_own_positions() -> None:
    torch.manual_seed(1)
    cache = SlotCache(rows=2, capacity=256)
    k_cache, v_cache = cache.layer(0, torch.zeros(1, KV_HEADS, 1, DIM))
    k_cache.normal_()
    v_cache.normal_()
    q = torch.randn(1, HEADS, 2, DIM)
    k, v = torch.randn(1, KV_HEADS, 2, DIM), torch.randn(1, KV_HEADS, 2, DIM)
    out = _run(cache, [3, 7], [], q, k, v)
    # row 0 has 3 positions: garbage at positions 3..6 of its row must not matter
    expected = _reference(q[0, :, :1], k_cache[0, :, :3], v_cache[0, :, :3], causal=False)
    torch.testing.assert_close(out[:1], expected)


def test_growing_keeps_the_rows_and_swap_exchanges_them() -> None:
    cache = SlotCache(rows=3, capacity=256)
    k_cache, _ = cache.layer(0, torch.zeros(1, KV_HEADS, 1, DIM))
    k_cache[0, :, :10] = 1.0
    k_cache[2, :, :4] = 2.0
    cache.ensure_capacity(300, used=[(0, 10), (2, 4)])
    assert cache.capacity == 512
    grown = cache.keys[0]
    assert grown is not None and grown.shape[2] == 512
    assert bool((grown[0, :, :10] == 1).all()) and bool((grown[2, :, :4] == 2).all())
    cache.swap(0, 10, 2, 4)
    assert bool((grown[2, :, :10] == 1).all()) and bool((grown[0, :, :4] == 2).all())


def test_a_released_row_reads_as_zeros_and_is_writable_again() -> None:
    cache = SlotCache(rows=2, capacity=256)
    k_cache, _ = cache.layer(0, torch.zeros(1, KV_HEADS, 1, DIM))
    k_cache.fill_(3.0)
    cache.release(1)
    assert float(k_cache[1].abs().sum()) == 0.0
    assert bool((k_cache[0] == 3).all())
    k_cache[1, :, 0] = 5.0
    assert bool((k_cache[1, :, 0] == 5).all())


def test_a_row_taking_over_a_longer_ones_slot_gives_its_tail_back() -> None:
    """After a move or a swap, the pages past the row's own length are handed back (they
    read as zeros): a slot does not stay as long as the longest sequence it ever held."""
    cache = SlotCache(rows=3, capacity=1024)  # a KV head's row spans 8 pages here
    k_cache, v_cache = cache.layer(0, torch.zeros(1, KV_HEADS, 1, DIM))
    per_page = 4096 // (DIM * 4)
    for t in (k_cache, v_cache):
        t[0].fill_(1.0)
        t[1].fill_(2.0)
        t[2].fill_(3.0)
    cache.move(0, 1, 10)  # a 10-position row takes the slot of a 1024-position one
    for t in (k_cache, v_cache):
        assert bool((t[1, :, :10] == 1).all())
        assert float(t[1, :, per_page:].abs().sum()) == 0.0  # past the row's first page
        assert bool((t[0] == 1).all()) and bool((t[2] == 3).all())  # the others untouched
    cache.swap(0, 3 * per_page, 2, per_page)
    assert bool((k_cache[2, :, : 3 * per_page] == 1).all())
    assert float(k_cache[2, :, 3 * per_page :].abs().sum()) == 0.0
    assert bool((k_cache[0, :, :per_page] == 3).all())
    assert float(k_cache[0, :, per_page:].abs().sum()) == 0.0
