"""A gateway's /traffic answer is network input: a bad one is left out, never a crash."""

from __future__ import annotations

import io
from typing import Any

import pytest

from kubellm.operator import sampling


class _Answer(io.BytesIO):
    def __enter__(self) -> _Answer:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b"not json", b'{"releases": {"v1": {"requests": -1}}}', b'{"releases": 3}'],
)
def test_a_hostile_or_broken_traffic_answer_is_left_out(
    monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    monkeypatch.setattr(sampling.urllib.request, "urlopen", lambda *_a, **_k: _Answer(body))
    assert sampling._ask("http://127.0.0.1:1/traffic?llm=default/x&since=0") is None


def test_a_good_traffic_answer_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b'{"releases": {"v1": {"requests": 3, "errors": 1, "tokens": 30, "seconds": 1.5}}}'
    monkeypatch.setattr(sampling.urllib.request, "urlopen", lambda *_a, **_k: _Answer(body))
    got = sampling._ask("http://127.0.0.1:1/traffic")
    assert got is not None and got["v1"].requests == 3 and got["v1"].errors == 1
