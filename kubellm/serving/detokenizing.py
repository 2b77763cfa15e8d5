"""Turning a growing list of token ids into text deltas, in constant work per token.

Decoding the whole generated sequence at every step costs O(length) per token, O(n^2)
per request, across every sequence of the batch. Decoding only the new token is wrong:
byte-level BPE splits multi-byte characters across tokens, and SentencePiece decides a
token's leading space from its left neighbour. The usual remedy (used by TGI and vLLM)
decodes a short window: the tokens since the last emitted boundary, minus the text those
same tokens decoded to before, and emits nothing while the window ends inside a
character (U+FFFD).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["DecodeState", "decode_step"]

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
