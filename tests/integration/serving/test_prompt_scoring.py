"""Prompt scoring on a real ``kubellm serve``: ``echo`` with ``max_tokens: 0`` and
``logprobs`` returns the prompt's logprobs, equal to a direct forward's log-softmax."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.serving.conftest import Server

PROMPT = "Question: How do I roll back to the previous version? Answer:"


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0, timeout=60)


def test_echo_logprobs_equal_a_direct_forward(client: openai.OpenAI, tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    r = client.completions.create(model="tiny", prompt=PROMPT, echo=True, max_tokens=0, logprobs=2)
    choice = r.choices[0]
    assert choice.text == PROMPT and choice.finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 0
    lp = choice.logprobs
    assert lp is not None and lp.token_logprobs is not None and lp.tokens is not None

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, torch_dtype=torch.float32)
    ids = tokenizer(PROMPT)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0]
    expected = torch.log_softmax(logits.float(), dim=-1)

    assert r.usage.prompt_tokens == len(ids) == len(lp.tokens) == len(lp.token_logprobs)
    assert lp.token_logprobs[0] is None
    for i in range(1, len(ids)):
        assert math.isclose(lp.token_logprobs[i], float(expected[i - 1, ids[i]]), abs_tol=1e-4)
    assert lp.text_offset is not None and lp.text_offset[0] == 0
    assert lp.text_offset == sorted(lp.text_offset)
    assert lp.top_logprobs is not None and lp.top_logprobs[0] is None
    best = int(expected[0].argmax())
    assert math.isclose(
        lp.top_logprobs[1][tokenizer.decode([best])], float(expected[0, best]), abs_tol=1e-4
    )
    perplexity = math.exp(-sum(lp.token_logprobs[1:]) / (len(ids) - 1))
    assert 1.0 < perplexity < tokenizer.vocab_size


def test_scoring_is_bounded_and_generation_logprobs_are_refused(server: Server) -> None:
    url = server.v1 + "/completions"
    base = {"model": "tiny", "prompt": PROMPT}
    refused = [
        {**base, "logprobs": 1, "max_tokens": 4},
        {**base, "echo": True, "max_tokens": 4},
        {**base, "echo": True, "max_tokens": 0, "logprobs": 50},
        {**base, "max_tokens": 0},
        {**base, "prompt": "word " * 400, "echo": True, "max_tokens": 0, "logprobs": 1},
    ]
    for body in refused:
        resp = httpx.post(url, json=body, timeout=30)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["error"]["message"]
    echoed = httpx.post(url, json={**base, "echo": True, "max_tokens": 0}, timeout=30).json()
    assert echoed["choices"][0]["text"] == PROMPT and echoed["choices"][0]["logprobs"] is None
    # the server still generates as before
    plain = httpx.post(url, json={**base, "max_tokens": 3, "temperature": 0}, timeout=30)
    assert plain.status_code == 200 and plain.json()["usage"]["completion_tokens"] >= 1
