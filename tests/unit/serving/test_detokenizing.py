"""Incremental detokenisation equals decoding everything at once, without split characters."""

from __future__ import annotations

from collections.abc import Sequence

from kubellm.serving.detokenizing import DecodeState, decode_step


def _bytes_decode(ids: Sequence[int]) -> str:
    # a byte-level "tokenizer": each id is one byte, like GPT-2's byte fallback
    return bytes(ids).decode("utf-8", errors="replace")


def _stream(ids: list[int], final: bool = True) -> list[str]:
    state, deltas = DecodeState(), []
    for n in range(1, len(ids) + 1):
        delta, state = decode_step(_bytes_decode, ids[:n], state, final=final and n == len(ids))
        deltas.append(delta)
    return deltas


def test_deltas_concatenate_to_the_full_decode() -> None:
    ids = list("héllo wörld 🚀 ok".encode())
    assert "".join(_stream(ids)) == _bytes_decode(ids)


def test_a_multibyte_character_is_never_emitted_in_pieces() -> None:
    deltas = _stream(list("🚀".encode()))
    assert deltas[:-1] == ["", "", ""] and deltas[-1] == "🚀"


def test_final_flushes_an_incomplete_character() -> None:
    ids = list(b"a") + list("🚀".encode())[:2]
    assert "".join(_stream(ids, final=True)) == _bytes_decode(ids)
    assert "".join(_stream(ids, final=False)) == "a"
