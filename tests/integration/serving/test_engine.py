"""The engine in-process with the tiny model: joining, leaving, cancelling, failing alone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubellm.serving.engine import Engine, EngineConfig
from kubellm.serving.errors import Overloaded
from kubellm.serving.loading import LoadedModel, load_model
from kubellm.serving.streams import ErrorEvent, Event, FinishEvent, SamplingParams, TokenEvent

GREEDY = SamplingParams(temperature=0.0)


DEVICE = os.environ.get("KUBELLM_TEST_DEVICE", "cpu")  # "cuda" on a GPU machine


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: Path) -> LoadedModel:
    return load_model(tiny_model_dir, device=DEVICE)


def _engine(loaded: LoadedModel, **config: Any) -> Engine:
    engine = Engine(
        loaded.model,
        loaded.tokenizer,
        EngineConfig(**config),
        context_len=loaded.context_len,
        eos_ids=set(),  # never stop early: lengths are then exact
        pad_id=loaded.pad_id,
    )
    engine.start()
    return engine


@pytest.fixture
def engine(loaded: LoadedModel) -> Iterator[Engine]:
    e = _engine(loaded, max_batch_size=8, max_queue=8)
    yield e
    e.stop()


def _ids(loaded: LoadedModel, text: str) -> list[int]:
    return list(loaded.tokenizer(text)["input_ids"])


def test_greedy_engine_output_equals_transformers_generate(
    engine: Engine, loaded: LoadedModel
) -> None:
    import torch

    prompt = "Question: How do I roll back? Answer:"
    ids = _ids(loaded, prompt)
    with torch.inference_mode():
        out = loaded.model.generate(
            torch.tensor([ids], device=loaded.model.device),
            max_new_tokens=20,
            do_sample=False,
            pad_token_id=loaded.pad_id,
        )
    expected = loaded.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)
    assert engine.generate(ids, max_new_tokens=20, timeout=30) == expected


PROMPTS = [
    "Hi",
    "Question: Why was my release refused? Answer:",
    "roll back",
    "alias " * 40,
    "The operator creates the request queue until the release is ready. " * 3,
]


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_greedy_output_equals_generate_with_chunked_prefill_and_staggered_joins(
    arch: str, tiny_model_dir: Path, tiny_llama_dir: Path
) -> None:
    """fp32, several prompts at once: each prompt is prefilled in chunks of a few tokens
    inside steps that also decode the others, rows join and leave at different steps, and
    every output is still exactly what ``generate`` gives for that prompt alone."""
    import torch
    from transformers import AutoModelForCausalLM

    model_dir = tiny_model_dir if arch == "gpt2" else tiny_llama_dir
    ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    lm = load_model(model_dir, device=DEVICE, dtype="float32")
    prompts = [_ids(lm, p) for p in PROMPTS]
    lengths = [12, 30, 7, 25, 18]
    expected = []
    with torch.inference_mode():
        for ids, n in zip(prompts, lengths, strict=True):
            out = ref.generate(
                torch.tensor([ids]), max_new_tokens=n, min_new_tokens=n, do_sample=False
            )
            expected.append(out[0, len(ids) :].tolist())
    engine = _engine(lm, max_batch_size=4, max_step_tokens=12, min_prefill_chunk=4)
    try:
        steps: list[int] = []
        forward = engine._forward

        def counting(tokens: list[int], *args: Any) -> Any:
            steps.append(len(tokens))
            return forward(tokens, *args)

        engine._forward = counting  # type: ignore[method-assign,assignment]
        streams = []
        for ids, n in zip(prompts, lengths, strict=True):
            streams.append(engine.submit(ids, GREEDY, n))
            time.sleep(0.02)
        texts = [s.wait(60)[0] for s in streams]
    finally:
        engine.stop()
    assert texts == [lm.tokenizer.decode(e, skip_special_tokens=True) for e in expected]
    assert max(steps) <= 12  # the step budget holds, however long the prompts


def test_requests_joining_a_running_batch_get_the_same_text_as_alone(
    engine: Engine, loaded: LoadedModel
) -> None:
    prompts = ["Hi", "Question: Why was my release refused? Answer:", "roll back", "alias " * 20]
    alone = [engine.generate(_ids(loaded, p), 30, timeout=30) for p in prompts]
    streams = []
    for p in prompts:  # staggered: each joins a batch that is already decoding
        streams.append(engine.submit(_ids(loaded, p), GREEDY, 30))
        time.sleep(0.01)
    assert [s.wait(30)[0] for s in streams] == alone


def test_seeded_sampling_in_the_engine_is_reproducible_and_seed_dependent(
    engine: Engine, loaded: LoadedModel
) -> None:
    ids = _ids(loaded, "Question: How do I deploy a model? Answer:")

    def run(seed: int) -> str:
        params = SamplingParams(temperature=1.0, top_p=0.9, seed=seed)
        return engine.submit(ids, params, 24).wait(30)[0]

    assert run(1) == run(1)
    assert len({run(s) for s in range(2, 6)}) > 1


def test_short_requests_leave_without_waiting_for_long_ones(
    engine: Engine, loaded: LoadedModel
) -> None:
    long = engine.submit(_ids(loaded, "Hi"), GREEDY, 200)
    short = engine.submit(_ids(loaded, "Hello"), GREEDY, 3)
    _, fin = short.wait(30)
    assert fin.completion_tokens == 3
    so_far = [long._squeue.get_nowait() for _ in range(long._squeue.qsize())]
    assert all(isinstance(e, TokenEvent) for e in so_far)  # the long one is still decoding
    assert len(so_far) < 200
    _, fin = long.wait(60)
    assert fin.completion_tokens == 200


def test_cancelled_request_leaves_the_batch(engine: Engine, loaded: LoadedModel) -> None:
    stream = engine.submit(_ids(loaded, "Hi"), GREEDY, 200)
    time.sleep(0.05)
    stream.cancel()
    _, fin = stream.wait(10)
    assert fin.reason == "cancelled" and fin.completion_tokens < 200
    assert engine.generate(_ids(loaded, "Hi"), 4, timeout=10)  # still serving


def test_full_queue_refuses_with_overloaded(loaded: LoadedModel) -> None:
    e = _engine(loaded, max_batch_size=1, max_queue=1)
    try:
        first = e.submit(_ids(loaded, "Hi"), GREEDY, 200)
        time.sleep(0.05)  # running
        e.submit(_ids(loaded, "Hi"), GREEDY, 5)  # waiting
        with pytest.raises(Overloaded):
            e.submit(_ids(loaded, "Hi"), GREEDY, 5)
        first.cancel()
    finally:
        e.stop()


def test_one_failing_request_does_not_stop_the_others(
    engine: Engine, loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = _ids(loaded, "poison pill")
    real_decode = loaded.tokenizer.decode

    def decode(ids: list[int], **kw: Any) -> str:
        if engine_seq_is_poisoned():
            raise RuntimeError("detokenizer exploded")
        return real_decode(ids, **kw)

    current: dict[str, Any] = {}

    def engine_seq_is_poisoned() -> bool:
        return bool(current.get("poisoned"))

    original_advance = engine.scheduler._advance

    def advance(seq: Any, token: int) -> None:
        current["poisoned"] = seq.prompt_ids == poison
        original_advance(seq, token)

    monkeypatch.setattr(loaded.tokenizer, "decode", decode)
    monkeypatch.setattr(engine.scheduler, "_advance", advance)
    healthy = engine.submit(_ids(loaded, "Hi"), GREEDY, 20)
    bad = engine.submit(poison, GREEDY, 20)
    events: list[Event] = []
    while not events or isinstance(events[-1], TokenEvent):
        events.append(bad._squeue.get(timeout=10))
    assert isinstance(events[-1], ErrorEvent)
    _, fin = healthy.wait(30)
    assert isinstance(fin, FinishEvent) and fin.completion_tokens == 20
    monkeypatch.undo()
    assert engine.generate(_ids(loaded, "Hi"), 4, timeout=10)
