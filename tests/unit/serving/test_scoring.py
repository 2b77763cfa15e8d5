"""Prompt scoring's arithmetic on a tiny random model: each token's logprob is the
log-softmax of the logits before it, the first has none, offsets index the prompt text."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
import torch

from kubellm.serving.errors import Overloaded
from kubellm.serving.scoring import Scorer, score_prompt


class _Tokenizer:
    """One character per token id (``chr(97 + id)``)."""

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return "".join(chr(97 + i) for i in ids)


class _Model(torch.nn.Module):
    """Logits that depend on the tokens before each position (a cumulative sum)."""

    def __init__(self, vocab: int = 7) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(vocab, vocab)

    def forward(self, input_ids: torch.Tensor, use_cache: bool = False) -> Any:
        logits = self.embed(input_ids).cumsum(dim=1)
        return type("Out", (), {"logits": logits})()


def test_logprobs_are_the_log_softmax_of_the_logits_before_each_token() -> None:
    model, ids = _Model(), [3, 1, 4, 1, 5]
    scores = score_prompt(model, _Tokenizer(), ids, top=2)
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    expected = torch.log_softmax(logits, dim=-1)
    assert scores.tokens == ["d", "b", "e", "b", "f"]
    assert scores.text_offset == [0, 1, 2, 3, 4]
    assert scores.token_logprobs[0] is None and scores.top_logprobs[0] is None
    for i in range(1, len(ids)):
        value = scores.token_logprobs[i]
        assert value is not None
        assert math.isclose(value, float(expected[i - 1, ids[i]]), abs_tol=1e-5)
        alternatives = scores.top_logprobs[i]
        assert alternatives is not None
        best = expected[i - 1].topk(2)
        for token_id, logprob in zip(best.indices.tolist(), best.values.tolist(), strict=True):
            assert math.isclose(alternatives[chr(97 + token_id)], logprob, abs_tol=1e-5)
        assert chr(97 + ids[i]) in alternatives and len(alternatives) <= 3


def test_a_one_token_prompt_has_no_logprob_and_top_0_only_the_actual_token() -> None:
    assert score_prompt(_Model(), _Tokenizer(), [2], top=3).token_logprobs == [None]
    scores = score_prompt(_Model(), _Tokenizer(), [2, 3], top=0)
    assert scores.top_logprobs[1] is not None and list(scores.top_logprobs[1]) == ["d"]


def test_a_full_queue_is_overloaded() -> None:
    scorer = Scorer(max_waiting=0)
    scorer._pending = 1  # one request already scoring
    with pytest.raises(Overloaded):
        asyncio.run(scorer.score(_Model(), _Tokenizer(), [1, 2], 1, timeout=5))
    scorer._pending = 0
    result = asyncio.run(scorer.score(_Model(), _Tokenizer(), [1, 2], 1, timeout=5))
    assert result.tokens == ["b", "c"] and scorer._pending == 0
    scorer.shutdown()
