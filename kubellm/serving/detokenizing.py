"""Turning a growing list of token ids into text deltas, and finding stop strings in it.

Decoding the whole generated sequence at every step costs O(length) per token, O(n^2)
per request, across every sequence of the batch. Decoding only the new token is wrong:
byte-level BPE splits multi-byte characters across tokens, and SentencePiece decides a
token's leading space from its left neighbour. The usual remedy (used by TGI and vLLM)
decodes a short window: the tokens since the last emitted boundary, minus the text those
same tokens decoded to before, and emits nothing while the window ends inside a
character (U+FFFD).

Stop sequences work on text, not tokens (a stop string may span token boundaries), and a
stream must never show text that later turns out to be part of a stop string.
``check_stop`` answers, for the text generated so far, how much of it is safe to emit and
whether (and where) a stop string has matched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["DecodeState", "StopCheck", "check_stop", "decode_step"]

Decode = Callable[[Sequence[int]], str]


@dataclass(frozen=True)
class DecodeState:
    prefix_offset: int = 0  # window start: tokens before it are settled text
    read_offset: int = 0  # tokens up to here have been turned into emitted text


def decode_step(
    decode: Decode, ids: Sequence[int], state: DecodeState, *, final: bool = False
) -> tuple[str, DecodeState]:
    """The new text that ``ids`` (all generated ids so far) adds, and the next state.

    With ``final`` the held-back tail is flushed even if it ends mid-character.
    """
    prefix = decode(ids[state.prefix_offset : state.read_offset])
    window = decode(ids[state.prefix_offset :])
    if len(window) > len(prefix) and (final or not window.endswith("\ufffd")):
        return window[len(prefix) :], DecodeState(state.read_offset, len(ids))
    return "", state


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
