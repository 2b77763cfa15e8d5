"""fp32 linear layers on CPU with their weights packed once for MKL, not on every call.

Why this module exists: a decoding step multiplies a few dozen rows by each weight matrix,
and for so few rows MKL's ``sgemm`` spends about a third of its time re-packing the
weight into its blocked layout, on every call. MKL can pack a matrix once
(``cblas_sgemm_pack``, exposed by PyTorch as ``torch.ops.mkl._mkl_reorder_linear_weight``)
and then multiply by the packed copy (``_mkl_linear``); measured on the serving model's
shapes (576x1536 etc., 32 rows, one core) that takes 0.45 ms where ``F.linear`` takes
0.69, with results equal to ``F.linear``'s to fp32 rounding. The packed layout does not
depend on the number of rows, so one copy serves every step (checked here, per weight
shape, against ``F.linear`` before any weight is replaced).

Memory: the packed copy replaces the weight, it does not sit beside it. The weights of a
safetensors checkpoint are pages of a private file mapping; once a weight is packed, its
pages are handed back to the kernel (``MADV_DONTNEED``: a clean file page is simply
dropped, and would be read again from the file if anything touched it), so resident
memory holds each weight once. The output head stays unpacked when its weight is the
input embedding's (tied), which the embedding lookup still reads.

Only ``torch.nn.Linear`` modules are packed (GPT-2's ``Conv1D`` and anything else keep
their own forward), only in float32, only where PyTorch was built with MKL.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["PackedLinear", "can_pack", "pack_linears"]

log = logging.getLogger(__name__)

_PACK_ROWS = 32  # rows the packing is planned for; any row count works (checked)
_CHECK_ROWS = (1, 7, 32, 200)


def can_pack(model: Any) -> bool:
    """fp32 weights on CPU, and a PyTorch with MKL's packed GEMM."""
    try:
        param = next(model.parameters())
    except StopIteration:
        return False
    return (
        param.device.type == "cpu"
        and param.dtype == torch.float32
        and torch.backends.mkl.is_available()
        and hasattr(torch.ops.mkl, "_mkl_linear")
    )


class PackedLinear(torch.nn.Module):
    """``nn.Linear``'s forward over an MKL-packed weight.

    ``weight`` is kept as a zero-stride placeholder of the right shape and dtype, so that
    code reading ``.weight.shape`` or ``.dtype`` still works; it holds no data.
    """

    def __init__(self, packed: torch.Tensor, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.register_buffer("packed", packed, persistent=False)
        self.bias = linear.bias
        w = linear.weight
        self.register_buffer(
            "weight",
            torch.zeros((), dtype=w.dtype, device=w.device).expand(w.shape),
            persistent=False,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        out = torch.ops.mkl._mkl_linear(rows, self.packed, self.weight, self.bias, rows.shape[0])
        return out.view(*x.shape[:-1], self.out_features)  # type: ignore[no-any-return]


def _pack(weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkl._mkl_reorder_linear_weight(weight, _PACK_ROWS)  # type: ignore[no-any-return]


def _agrees(linear: torch.nn.Linear, packed: PackedLinear) -> bool:
    """The packed product equals ``F.linear``'s to fp32 rounding, for several row counts."""
    gen = torch.Generator().manual_seed(0)
    for rows in _CHECK_ROWS:
        x = torch.randn(rows, linear.in_features, generator=gen)
        want = F.linear(x, linear.weight, linear.bias)
        if not torch.allclose(packed(x), want, rtol=1e-4, atol=1e-4 * float(want.abs().max())):
            return False
    return True


class _FileMappings:
    """The process's private file mappings, to give a packed weight's pages back."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []
        try:
            with open("/proc/self/maps") as maps:
                for line in maps:
                    parts = line.split()
                    if len(parts) >= 6 and parts[5].startswith("/") and parts[1][3] == "p":
                        start, end = (int(v, 16) for v in parts[0].split("-"))
                        self.ranges.append((start, end))
        except OSError:
            pass
        self._madvise: Any = None
        if self.ranges:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
            self._madvise = libc.madvise

    def drop(self, t: torch.Tensor) -> int:
        """Drop the whole pages inside ``t`` if it lies in a file mapping; bytes dropped."""
        if self._madvise is None or not t.is_contiguous():
            return 0
        first = t.data_ptr()
        last = first + t.numel() * t.element_size()
        if not any(s <= first and last <= e for s, e in self.ranges):
            return 0  # ordinary memory: freeing the tensor gives it back
        page = mmap.PAGESIZE
        start = -(-first // page) * page
        end = last // page * page
        if end <= start or self._madvise(start, end - start, mmap.MADV_DONTNEED) != 0:
            return 0
        return end - start


def pack_linears(model: Any) -> int:
    """Replace ``model``'s fp32 ``nn.Linear`` modules by ``PackedLinear``; how many.

    A weight shared with another module (a tied output head) is left as it is. Nothing is
    replaced if a packed product disagrees with ``F.linear`` for some weight shape.
    """
    if not can_pack(model):
        return 0
    counts: dict[int, int] = {}
    for p in model.parameters():
        counts[p.data_ptr()] = counts.get(p.data_ptr(), 0) + 1
    targets = [
        (name, m)
        for name, m in model.named_modules()
        if type(m) is torch.nn.Linear
        and m.weight.dtype == torch.float32
        and counts.get(m.weight.data_ptr(), 0) == 1
        and not _is_embedding_weight(model, m.weight)
    ]
    with torch.no_grad():
        examples = {(m.in_features, m.out_features): m for _, m in targets}
        for shape, linear in examples.items():
            if not _agrees(linear, PackedLinear(_pack(linear.weight.detach()), linear)):
                log.warning("MKL packed GEMM disagrees with F.linear for %s; not packing", shape)
                return 0
        packed_ids = {id(m.weight) for _, m in targets}
        others = (*model.parameters(), *model.buffers())
        kept = [_span(t) for t in others if id(t) not in packed_ids and t.layout == torch.strided]
        mappings = _FileMappings()
        dropped = 0
        for name, linear in targets:
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, attr, PackedLinear(_pack(linear.weight.detach()), linear))
            first, last = _span(linear.weight)
            if not any(a < last and first < b for a, b in kept):  # no one else reads it
                dropped += mappings.drop(linear.weight)
    log.info(
        "packed %d linear weights for MKL (%d MB of file pages given back)",
        len(targets),
        dropped >> 20,
    )
    return len(targets)


def _span(t: torch.Tensor) -> tuple[int, int]:
    first = t.data_ptr()
    return first, first + t.numel() * t.element_size()


def _is_embedding_weight(model: Any, weight: torch.Tensor) -> bool:
    get = getattr(model, "get_input_embeddings", None)
    emb = get() if callable(get) else None
    w = getattr(emb, "weight", None)
    return isinstance(w, torch.Tensor) and w.data_ptr() == weight.data_ptr()
