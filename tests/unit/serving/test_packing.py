"""MKL-packed linear weights: the same products as ``F.linear``, the weight held once."""

from __future__ import annotations

import pytest
import torch

from kubellm.serving.packing import PackedLinear, can_pack, pack_linears

pytestmark = pytest.mark.skipif(
    not can_pack(torch.nn.Linear(2, 2)), reason="this PyTorch has no MKL packed GEMM"
)


class _Tiny(torch.nn.Module):
    """Two linears, an embedding tied to an output head, like a small causal LM."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(50, 24)
        self.up = torch.nn.Linear(24, 40, bias=True)
        self.down = torch.nn.Linear(40, 24, bias=False)
        self.head = torch.nn.Linear(24, 50, bias=False)
        self.head.weight = self.embed.weight

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.embed

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.down(torch.relu(self.up(self.embed(ids)))))


def test_packed_model_computes_what_the_plain_one_does_for_any_row_count() -> None:
    torch.manual_seed(0)
    model = _Tiny()
    ids = [torch.randint(0, 50, (1, n)) for n in (1, 3, 32, 77)]
    with torch.inference_mode():
        want = [model(i) for i in ids]
    assert pack_linears(model) == 2  # up and down; the tied head stays as it is
    assert isinstance(model.up, PackedLinear) and isinstance(model.down, PackedLinear)
    assert type(model.head) is torch.nn.Linear
    assert model.up.weight.shape == (40, 24) and model.up.weight.stride() == (0, 0)
    with torch.inference_mode():
        for i, w in zip(ids, want, strict=True):
            torch.testing.assert_close(model(i), w, rtol=1e-5, atol=1e-5)
    assert pack_linears(model) == 0  # a second engine on the same model packs nothing


def test_nothing_is_packed_outside_float32() -> None:
    model = _Tiny().to(torch.bfloat16)
    assert pack_linears(model) == 0
    assert type(model.up) is torch.nn.Linear
