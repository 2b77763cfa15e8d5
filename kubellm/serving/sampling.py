"""Choosing the next token: pure functions of logits, parameters and a random stream.

The engine batches sequences that each carry their own sampling parameters, so the
choice of the next token is a function of (logits row, parameters, random generator)
and nothing else. Keeping it pure means the same code serves a batch of 32 and a batch
of one, which is what makes temperature-0 output identical batched and alone, and it
lets the unit tests pin the maths without a model. (When a sequence stops is the
scheduler's decision; stop strings are matched on text in ``detokenizing``.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from kubellm.serving.streams import SamplingParams

__all__ = ["make_generator", "next_tokens", "sample_row"]


def make_generator(seed: int | None) -> torch.Generator:
    """A private random stream per request, so one request's draws never shift another's."""
    gen = torch.Generator()
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(seed)
    return gen


def sample_row(logits: torch.Tensor, params: SamplingParams, generator: torch.Generator) -> int:
    """The next token for one sequence from its 1-D ``logits`` row."""
    if params.greedy:
        return int(torch.argmax(logits).item())
    # Sample on the CPU: the per-request generator lives there, whatever the model's device.
    scaled = logits.detach().float().cpu() / params.temperature
    probs = torch.softmax(scaled, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, sorted_idx = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        # Keep the smallest prefix whose mass reaches top_p (always at least one token).
        keep = (cumulative - sorted_probs) < params.top_p
        keep[0] = True
        kept = torch.zeros_like(probs)
        kept[sorted_idx[keep]] = sorted_probs[keep]
        probs = kept / kept.sum()
    return int(torch.multinomial(probs, 1, generator=generator).item())


def next_tokens(
    logits: torch.Tensor,
    params: Sequence[SamplingParams],
    generators: Sequence[torch.Generator],
) -> list[int]:
    """The next token of every row of ``logits`` ([batch, vocab]).

    Greedy rows are decided with one ``argmax`` over the batch; only sampled rows pay for
    a per-row softmax.
    """
    greedy = torch.argmax(logits, dim=-1).tolist()
    out: list[int] = []
    for i, p in enumerate(params):
        out.append(int(greedy[i]) if p.greedy else sample_row(logits[i], p, generators[i]))
    return out
