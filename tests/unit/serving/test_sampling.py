"""Token choice and stop-string handling, without a model."""

from __future__ import annotations

import pytest
import torch

from kubellm.serving.detokenizing import check_stop
from kubellm.serving.sampling import make_generator, next_tokens, sample_row
from kubellm.serving.streams import SamplingParams


def test_temperature_zero_is_argmax_for_every_row() -> None:
    logits = torch.tensor([[0.1, 2.0, 0.3], [5.0, 0.0, 0.0]])
    params = [SamplingParams(temperature=0.0)] * 2
    gens = [make_generator(0), make_generator(0)]
    assert next_tokens(logits, params, gens) == [1, 0]


def test_same_seed_gives_same_draws() -> None:
    logits = torch.randn(100)
    p = SamplingParams(temperature=1.0, seed=7)
    a = [sample_row(logits, p, g) for g in [make_generator(7)] for _ in range(20)]
    b = [sample_row(logits, p, g) for g in [make_generator(7)] for _ in range(20)]
    assert a == b


def test_small_top_p_keeps_only_the_most_likely_token() -> None:
    logits = torch.tensor([3.0, 2.9, -10.0, -10.0])
    p = SamplingParams(temperature=1.0, top_p=0.01)
    gen = make_generator(1)
    assert {sample_row(logits, p, gen) for _ in range(50)} == {0}


def test_top_p_never_samples_outside_the_nucleus() -> None:
    # probabilities ~ [0.5, 0.3, 0.2-eps, eps...]: top_p 0.75 keeps tokens 0 and 1 only
    probs = torch.tensor([0.5, 0.3, 0.19, 0.01])
    logits = probs.log()
    p = SamplingParams(temperature=1.0, top_p=0.75)
    gen = make_generator(3)
    assert {sample_row(logits, p, gen) for _ in range(300)} <= {0, 1}


def test_rows_with_different_params_do_not_interfere() -> None:
    logits = torch.tensor([[0.0, 9.0, 0.0], [0.0, 9.0, 0.0]])
    params = [SamplingParams(temperature=0.0), SamplingParams(temperature=2.0, seed=5)]
    out = next_tokens(logits, params, [make_generator(None), make_generator(5)])
    assert out[0] == 1
    assert out[1] in (0, 1, 2)


def test_stop_string_cuts_text_before_it() -> None:
    check = check_stop("Hello world\nNext", ["\n"])
    assert check.stopped and check.safe_len == len("Hello world")


def test_earliest_of_several_stop_strings_wins() -> None:
    check = check_stop("a END b STOP", ["STOP", "END"])
    assert check.stopped and check.safe_len == 2


def test_partial_stop_string_at_the_end_is_held_back() -> None:
    check = check_stop("Hello EN", ["END"])
    assert not check.stopped and check.safe_len == len("Hello ")


def test_text_is_fully_safe_without_stop_strings() -> None:
    assert check_stop("anything", []) == check_stop("anything", [""])
    assert check_stop("anything", []).safe_len == len("anything")


def test_incomplete_utf8_tail_is_held_back() -> None:
    assert check_stop("caf\ufffd", []).safe_len == 3


@pytest.mark.parametrize("text", ["", "E", "EN"])
def test_stop_prefix_alone_is_held_entirely(text: str) -> None:
    assert check_stop(text, ["END"]).safe_len == 0
