"""Choosing the next token and deciding when a sequence stops: pure functions.

The engine batches sequences that each carry their own sampling parameters, so the
choice of the next token is a function of (logits row, parameters, random generator)
and nothing else. Keeping it pure means the same code serves a batch of 32 and a batch
of one, which is what makes temperature-0 output identical batched and alone, and it
lets the unit tests pin the maths without a model.

Stop sequences work on text, not tokens (a stop string may span token boundaries), and a
stream must never show text that later turns out to be part of a stop string. The
``StopScanner`` answers, for the text generated so far, how much of it is safe to emit
and whether (and where) a stop string has matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

__all__ = [
    "SamplingParams",
    "StopCheck",
    "check_stop",
    "make_generator",
    "next_tokens",
    "sample_row",
]


@dataclass(frozen=True)
class SamplingParams:
    """Per-request decoding parameters (OpenAI semantics: temperature 0 means greedy)."""

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)
    # Keep generating past end-of-sequence tokens, up to the token cap (benchmarks).
    ignore_eos: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


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


@dataclass(frozen=True)
class StopCheck:
    """How much of the generated text may be shown, and whether a stop string matched.

    ``safe_len``: characters of the text that can be emitted now. When ``stopped`` is
    true, ``safe_len`` is where the first stop string begins and the text beyond it is
    discarded.
    """

    safe_len: int
    stopped: bool


def check_stop(text: str, stops: Sequence[str]) -> StopCheck:
    """Scan ``text`` (all text generated so far) for the earliest stop string.

    Without a match, hold back the longest tail of ``text`` that is a proper prefix of
    some stop string, since the next token may complete it. A trailing U+FFFD (an
    incomplete UTF-8 sequence mid-decode) is held back too.
    """
    stops = [s for s in stops if s]
    first: int | None = None
    for s in stops:
        idx = text.find(s)
        if idx != -1 and (first is None or idx < first):
            first = idx
    if first is not None:
        return StopCheck(safe_len=first, stopped=True)
    hold = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    safe = len(text) - hold
    while safe > 0 and text[safe - 1] == "\ufffd":
        safe -= 1
    return StopCheck(safe_len=safe, stopped=False)
