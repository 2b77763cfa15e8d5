"""Prompt scoring: the log-probability of each prompt token, for perplexity (``echo`` with
``max_tokens: 0``).

Why it is not the engine's work: the engine computes logits only for the rows it samples
and keeps a KV cache per sequence; scoring needs every position's logits of one prompt and
no cache at all. It is one plain forward pass, so it runs here, beside the engine rather
than in it, and the engine's hot path stays untouched. The model is shared (read-only in
inference mode); without the engine's step the installed attention defers to SDPA (see
``kvslots``), so this forward is the model's own.

Bounds: the routes apply the prompt limit before a prompt gets here; one scoring forward
runs at a time on this module's own thread (its logits are ``[tokens, vocab]``), and at
most ``max_waiting`` more wait for it, beyond which a request is ``Overloaded`` (429).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from kubellm.serving.errors import Overloaded, RequestTimeout

__all__ = ["PromptScores", "Scorer", "score_prompt"]


@dataclass(frozen=True)
class PromptScores:
    """OpenAI's legacy completions ``logprobs`` object, for the prompt's tokens."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "token_logprobs": self.token_logprobs,
            "top_logprobs": self.top_logprobs,
            "text_offset": self.text_offset,
        }


def _decode(tokenizer: Any, ids: list[int]) -> str:
    return str(tokenizer.decode(ids, skip_special_tokens=False))


def score_prompt(model: Any, tokenizer: Any, prompt_ids: list[int], top: int) -> PromptScores:
    """Each prompt token's log-probability given the tokens before it (the first has none),
    with the ``top`` most likely tokens at each position (plus the actual one, as vLLM)."""
    device = next(model.parameters()).device
    with torch.inference_mode():
        ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
        logits = model(input_ids=ids, use_cache=False).logits[0]
        # position i predicts token i+1: the last position predicts nothing of the prompt
        logprobs = torch.log_softmax(logits[:-1].float(), dim=-1)
        targets = ids[0, 1:]
        chosen = logprobs.gather(1, targets.unsqueeze(1)).squeeze(1).tolist()
        if top > 0 and len(prompt_ids) > 1:
            best_values, best_ids = logprobs.topk(min(top, logprobs.shape[-1]), dim=-1)
            best = list(zip(best_ids.tolist(), best_values.tolist(), strict=True))
        else:
            best = [([], []) for _ in chosen]
    tokens = [_decode(tokenizer, [t]) for t in prompt_ids]
    # as vLLM: each token's offset is the length of the token texts before it (linear; a
    # character split over tokens counts once per piece, as in their texts)
    offsets = list(itertools.accumulate((len(t) for t in tokens[:-1]), initial=0))
    top_logprobs: list[dict[str, float] | None] = [None]
    for i, (alt_ids, alt_values) in enumerate(best):
        alternatives = {tokens[i + 1]: chosen[i]}
        for alt, value in zip(alt_ids, alt_values, strict=True):
            alternatives.setdefault(_decode(tokenizer, [alt]), value)
        top_logprobs.append(alternatives)
    return PromptScores(
        tokens=tokens,
        token_logprobs=[None, *chosen],
        top_logprobs=top_logprobs,
        text_offset=offsets,
    )


class Scorer:
    """Runs ``score_prompt`` one at a time on its own thread, off the event loop."""

    def __init__(self, max_waiting: int = 8) -> None:
        self.max_waiting = max_waiting
        self._pending = 0
        self._guard = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        with self._guard:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="kubellm-scoring")
            return self._executor

    async def score(
        self, model: Any, tokenizer: Any, prompt_ids: list[int], top: int, timeout: float
    ) -> PromptScores:
        with self._guard:
            if self._pending > self.max_waiting:
                raise Overloaded(
                    f"{self._pending} prompt-scoring requests are already queued; retry later"
                )
            self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(
                self._pool(), score_prompt, model, tokenizer, prompt_ids, top
            )
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise RequestTimeout(
                    f"scoring the prompt did not finish within {timeout:g} s "
                    "(the server's --request-timeout)"
                ) from None
        finally:
            with self._guard:
                self._pending -= 1

    def shutdown(self) -> None:
        with self._guard:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
