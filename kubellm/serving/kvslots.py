"""The KV cache as preallocated slots, and the attention that reads it in place.

Why this module exists: a serving step mixes sequences at different positions, and the
dense ``DynamicCache`` that ``generate`` uses can only hold them as one left-padded
rectangle, so every join concatenates and every leave index-selects the whole batch's
cache, and attention runs over everybody's padding. Here each layer owns one tensor
``[rows, kv_heads, capacity, head_dim]`` allocated once; a sequence owns a row (its
*slot*) from admission to finish, its token at position ``p`` lives at ``[slot, :, p]``,
and nothing else is ever copied. A step is one forward pass over a flat list of tokens
(``[1, T]``): one token per decoding sequence first, in slot order, then the prompt
chunks of sequences being prefilled. The model's own layers (projections, norms, rotary
embeddings, MLPs) run unchanged on that flat list, so matmuls see all ``T`` tokens at
once; only attention is ours, plugged in through transformers' ``AttentionInterface``:

- it writes the step's keys and values into their slots (one ``index_put_`` per layer);
- decoding rows (slots ``0..n-1``, kept contiguous by the engine) attend with one batched
  SDPA call over positions below the longest row, each row masking its own tail; the
  query heads sharing a KV head are folded into the query axis, so GQA needs no copy;
- each prefill chunk attends causally to its own slot, earlier chunks included.

Without the engine's step (``generate``, tests) the same function defers to transformers'
SDPA attention, so the installed model still behaves as before everywhere else.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from kubellm.serving.scheduling import Chunk

__all__ = ["ATTENTION_NAME", "SlotCache", "Step", "install", "slot_attention"]

ATTENTION_NAME = "kubellm_slots"
_GROW = 256  # capacity grows in multiples of this many positions


class SlotCache:
    """One ``[rows, kv_heads, capacity, head_dim]`` key and value tensor per layer.

    Layers are allocated on first use, from the shapes the model hands to attention, so
    nothing here needs to know the architecture. ``capacity`` grows (copying the rows in
    use) when a longer request is admitted, and everything is freed when the engine is
    idle. On CPU the tensors live in private anonymous memory maps: a page costs memory
    only once a row reaches it, and a finished sequence's row is handed back to the kernel
    (``release``), so resident memory follows the tokens in the batch, not the capacity,
    and the engine can start with a capacity as large as the context.
    """

    def __init__(self, rows: int, capacity: int = _GROW) -> None:
        self.rows = rows
        self.capacity = capacity
        self.keys: list[torch.Tensor | None] = []
        self.values: list[torch.Tensor | None] = []
        self._maps: dict[int, mmap.mmap] = {}  # data_ptr -> the map behind a CPU tensor

    def _zeros(self, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        if like.device.type != "cpu":
            return torch.zeros(shape, dtype=like.dtype, device=like.device)
        numel = shape[0] * shape[1] * shape[2] * shape[3]
        buf = mmap.mmap(-1, max(1, numel * like.element_size()), flags=mmap.MAP_PRIVATE)
        t = torch.frombuffer(buf, dtype=like.dtype, count=numel).view(shape)
        self._maps[t.data_ptr()] = buf
        return t

    def layer(self, idx: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cache of layer ``idx``; ``like`` is that layer's ``[1, kv_heads, T, dim]`` keys."""
        while len(self.keys) <= idx:
            self.keys.append(None)
            self.values.append(None)
        k, v = self.keys[idx], self.values[idx]
        if k is None or v is None:
            shape = (self.rows, like.shape[1], self.capacity, like.shape[3])
            k, v = self._zeros(shape, like), self._zeros(shape, like)
            self.keys[idx], self.values[idx] = k, v
        return k, v

    def ensure_capacity(self, length: int, used: Sequence[tuple[int, int]] = ()) -> None:
        """Make room for ``length`` positions per row, copying the ``(row, positions)`` in
        ``used`` (and nothing else, so untouched memory stays untouched)."""
        if length <= self.capacity:
            return
        new_cap = -(-length // _GROW) * _GROW
        old_maps, self._maps = self._maps, {}
        for store in (self.keys, self.values):
            for i, old in enumerate(store):
                if old is not None:
                    new = self._zeros((old.shape[0], old.shape[1], new_cap, old.shape[3]), old)
                    for row, n in used:
                        new[row, :, :n] = old[row, :, :n]
                    store[i] = new
        del old_maps  # unmapped once the old tensors are gone
        self.capacity = new_cap

    def reset(self, capacity: int = _GROW) -> None:
        """Free every layer (the engine is idle); they are allocated again on next use."""
        self.keys, self.values, self._maps, self.capacity = [], [], {}, capacity

    def release(self, row: int) -> None:
        """Give a finished row's memory back (CPU); it reads as zeros until written again."""
        self.trim(row, 0)

    def trim(self, row: int, length: int) -> None:
        """Give back the memory of row ``row`` from position ``length`` on (CPU; whole pages
        only). A row that takes over another's slot (``move``) would otherwise keep the
        longer sequence's tail resident, and every row would end up as long as the
        longest sequence it ever held."""
        page = mmap.PAGESIZE
        for store in (self.keys, self.values):
            for t in store:
                buf = self._maps.get(t.data_ptr()) if t is not None else None
                if buf is None or t is None:
                    continue
                esize = t.element_size()
                head_bytes = t.stride(1) * esize  # one KV head's positions of one row
                keep = -(-length * t.stride(2) * esize // page) * page
                if head_bytes % page or keep >= head_bytes:
                    continue
                for h in range(t.shape[1]):
                    start = (row * t.shape[1] + h) * head_bytes
                    buf.madvise(mmap.MADV_DONTNEED, start + keep, head_bytes - keep)

    def move(self, src: int, dst: int, length: int) -> None:
        """Copy the first ``length`` positions of row ``src`` into row ``dst``."""
        if src == dst:
            return
        for store in (self.keys, self.values):
            for t in store:
                if t is not None and length > 0:
                    t[dst, :, :length] = t[src, :, :length]
        self.trim(dst, max(0, length))

    def swap(self, a: int, len_a: int, b: int, len_b: int) -> None:
        """Exchange rows ``a`` and ``b`` (their first ``len_a`` / ``len_b`` positions)."""
        if a == b:
            return
        for store in (self.keys, self.values):
            for t in store:
                if t is None:
                    continue
                saved = t[a, :, :len_a].clone()
                if len_b > 0:
                    t[a, :, :len_b] = t[b, :, :len_b]
                if len_a > 0:
                    t[b, :, :len_a] = saved
        self.trim(a, len_b)
        self.trim(b, len_a)


@dataclass
class Step:
    """What one forward pass computes, shared by every layer's attention.

    ``write_slots``/``write_pos`` say where each flat token's key and value go. The first
    ``n_decode`` tokens are decoding rows in slots ``0..n_decode-1`` whose lengths (after
    this token) are ``decode_lens``; then come the prefill ``chunks``.
    """

    cache: SlotCache
    write_slots: torch.Tensor
    write_pos: torch.Tensor
    n_decode: int
    decode_len: int = 0
    decode_mask: torch.Tensor | None = None
    chunks: list[Chunk] = field(default_factory=list)
    chunk_masks: list[torch.Tensor | None] = field(default_factory=list)
    max_len: int = 0

    @classmethod
    def build(
        cls, cache: SlotCache, decode_lens: list[int], chunks: list[Chunk], device: Any
    ) -> Step:
        slots: list[int] = list(range(len(decode_lens)))
        pos: list[int] = [n - 1 for n in decode_lens]
        masks: list[torch.Tensor | None] = []
        for c in chunks:
            slots += [c.slot] * c.length
            pos += range(c.start_pos, c.start_pos + c.length)
            if c.start_pos == 0:
                masks.append(None)  # plain causal attention over the chunk
            else:
                q = torch.arange(c.start_pos, c.start_pos + c.length, device=device)
                k = torch.arange(c.start_pos + c.length, device=device)
                masks.append(k[None, :] <= q[:, None])
        step = cls(
            cache=cache,
            write_slots=torch.tensor(slots, dtype=torch.long, device=device),
            write_pos=torch.tensor(pos, dtype=torch.long, device=device),
            n_decode=len(decode_lens),
            chunks=chunks,
            chunk_masks=masks,
        )
        if decode_lens:
            step.decode_len = max(decode_lens)
            if min(decode_lens) < step.decode_len:
                lens = torch.tensor(decode_lens, device=device)
                cols = torch.arange(step.decode_len, device=device)
                step.decode_mask = (cols[None, :] < lens[:, None]).view(
                    len(decode_lens), 1, 1, step.decode_len
                )
        ends = [c.start_pos + c.length for c in chunks]
        step.max_len = max([step.decode_len, *ends])
        return step


def slot_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention: ``query`` ``[1, heads, T, dim]`` -> ``[1, T, heads, dim]``."""
    step: Step | None = kwargs.pop("kubellm_step", None)
    if step is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(  # type: ignore[no-any-return]
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    for unsupported in ("softcap", "position_bias", "s_aux"):  # soft-capping, ALiBi, sinks
        if kwargs.get(unsupported) is not None:
            raise NotImplementedError(f"attention with {unsupported} is not supported")
    window = kwargs.get("sliding_window")
    if window is not None and step.max_len > window:
        raise NotImplementedError("sliding-window attention beyond the window is not supported")
    k_cache, v_cache = step.cache.layer(module.layer_idx, key)
    # [1, kv, T, d] -> [T, kv, d], written at (slot, :, position) of each token
    k_cache.permute(0, 2, 1, 3).index_put_(
        (step.write_slots, step.write_pos), key[0].transpose(0, 1)
    )
    v_cache.permute(0, 2, 1, 3).index_put_(
        (step.write_slots, step.write_pos), value[0].transpose(0, 1)
    )
    heads, dim = query.shape[1], query.shape[3]
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    parts: list[torch.Tensor] = []
    n = step.n_decode
    if n:
        # [heads, n, d] -> [n, kv, groups, d]: the heads of a KV group become its queries
        q = query[0, :, :n].reshape(kv_heads, groups, n, dim).permute(2, 0, 1, 3)
        out = F.scaled_dot_product_attention(
            q,
            k_cache[:n, :, : step.decode_len],
            v_cache[:n, :, : step.decode_len],
            attn_mask=step.decode_mask,
            scale=scaling,
        )
        parts.append(out.reshape(n, heads, dim))
    for chunk, mask in zip(step.chunks, step.chunk_masks, strict=True):
        end = chunk.start_pos + chunk.length
        q = query[:, :, chunk.token_start : chunk.token_start + chunk.length]
        out = F.scaled_dot_product_attention(
            q,
            k_cache[chunk.slot : chunk.slot + 1, :, :end],
            v_cache[chunk.slot : chunk.slot + 1, :, :end],
            attn_mask=mask,
            is_causal=mask is None,
            scale=scaling,
            enable_gqa=groups > 1,
        )
        parts.append(out[0].transpose(0, 1))
    result = parts[0] if len(parts) == 1 else torch.cat(parts)
    return result.unsqueeze(0), None


def install(model: Any) -> None:
    """Route ``model``'s attention through ``slot_attention`` (SDPA when no step is given)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    if not getattr(model, "_supports_attention_backend", False):
        raise ValueError(
            f"{type(model).__name__} does not use transformers' attention interface; "
            "the serving engine needs it to manage the KV cache"
        )
    AttentionInterface.register(ATTENTION_NAME, slot_attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
    model.set_attn_implementation(ATTENTION_NAME)
