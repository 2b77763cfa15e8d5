"""Flags, environment fallbacks and validation messages of `kubellm train`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kubellm.training.errors import OptionsError
from kubellm.training.options import OPTIONS, add_arguments, env_name, resolve_options

BASE = {"dataset": "data.txt", "tracking_uri": "sqlite:///x.db", "llm_name": "bot"}


def parse(argv: list[str]) -> dict[str, object]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return vars(parser.parse_args(argv))


def test_defaults_match_the_crd_hyperparameters() -> None:
    opts = resolve_options({**BASE, "base_model": "models:/bot@production"}, {})
    assert (opts.method, opts.learning_rate, opts.batch_size, opts.sequence_length) == (
        "full",
        5e-4,
        8,
        128,
    )
    assert (opts.lora_rank, opts.lora_alpha, opts.seed, opts.alias) == (8, 16, 42, "candidate")
    assert opts.registered_model == "bot"
    assert opts.output_dir == Path("kubellm-train/bot")


def test_every_flag_falls_back_to_its_kubellm_environment_variable() -> None:
    env = {
        "KUBELLM_LLM_NAME": "support",
        "KUBELLM_METHOD": "pretrain",
        "KUBELLM_ARCHITECTURE": "gpt2-tiny",
        "KUBELLM_DATASET": "/data/corpus.txt",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "KUBELLM_LEARNING_RATE": "3e-4",
        "KUBELLM_MAX_STEPS": "200",
        "KUBELLM_LOG_ADAPTER": "",
        "KUBELLM_MAX_EVAL_LOSS": "2.5",
        "KUBELLM_GENERATION": "7",
    }
    opts = resolve_options(parse([]), env)
    assert opts.method == "pretrain" and opts.architecture == "gpt2-tiny"
    assert opts.tracking_uri == "http://mlflow:5000"
    assert opts.learning_rate == 3e-4 and opts.max_steps == 200
    assert opts.max_eval_loss == 2.5 and opts.generation == "7"
    assert opts.log_adapter is False
    assert all(env_name(o.dest).startswith("KUBELLM_") for o in OPTIONS)


def test_a_flag_wins_over_the_environment() -> None:
    flags = parse(["--batch-size", "4", "--dataset", "b.txt"])
    env = {"KUBELLM_BATCH_SIZE": "64", "KUBELLM_DATASET": "a.txt"}
    opts = resolve_options({**flags, "tracking_uri": "x", "llm_name": "a", "base_model": "d"}, env)
    assert opts.batch_size == 4 and opts.dataset == "b.txt"


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("learning_rate", "0", "--learning-rate: 0.0 is out of range (must be > 0 and <= 1)"),
        ("learning_rate", "abc", "--learning-rate: 'abc' is not a valid learning_rate"),
        ("batch_size", "0", "--batch-size: 0 is out of range (must be >= 1 and <= 4096)"),
        ("sequence_length", "4", "--sequence-length: 4 is out of range"),
        ("eval_fraction", "0.9", "--eval-fraction: 0.9 is out of range (must be >= 0 and <= 0.5)"),
        ("epochs", "nan", "--epochs: 'nan' is not a valid epochs"),
        ("lora_rank", "2048", "--lora-rank: 2048 is out of range"),
        ("vocab_size", "100", "--vocab-size: 100 is out of range"),
        ("method", "distill", "--method: 'distill' is not one of pretrain, full, lora"),
    ],
)
def test_out_of_range_hyperparameters_are_refused_with_the_flag_named(
    flag: str, value: str, message: str
) -> None:
    with pytest.raises(OptionsError) as err:
        resolve_options({**BASE, "base_model": "d", flag: value}, {})
    assert message in str(err.value)


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(OptionsError, match="KUBELLM_BATCH_SIZE: -1 is out of range"):
        resolve_options({**BASE, "base_model": "d"}, {"KUBELLM_BATCH_SIZE": "-1"})


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"tracking_uri": "x", "llm_name": "a", "base_model": "d"}, "--dataset"),
        ({"dataset": "d", "llm_name": "a", "base_model": "d"}, "MLFLOW_TRACKING_URI"),
        ({**BASE, "method": "pretrain"}, "--architecture (or KUBELLM_ARCHITECTURE) is required"),
        ({**BASE, "method": "lora"}, "--base-model (or KUBELLM_BASE_MODEL) is required"),
        ({**BASE, "base_model": "d", "log_adapter": "true"}, "only applies to --method lora"),
        ({"dataset": "d", "tracking_uri": "x", "base_model": "d"}, "--llm-name"),
    ],
)
def test_missing_or_contradictory_inputs_say_what_is_needed(
    flags: dict[str, str], message: str
) -> None:
    with pytest.raises(OptionsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_options(flags, {})


def test_params_for_mlflow_are_strings_and_leave_out_the_tracking_uri() -> None:
    opts = resolve_options({**BASE, "base_model": "models:/a/1"}, {})
    params = opts.params()
    assert "tracking_uri" not in params
    assert params["base_model"] == "models:/a/1"
    assert all(isinstance(v, str) for v in params.values())


def test_digest_ignores_where_and_how_often_it_writes_but_not_the_training() -> None:
    base = {**BASE, "base_model": "d"}
    same = resolve_options(base, {})
    moved = resolve_options({**base, "output_dir": "/elsewhere", "save_steps": "7"}, {})
    changed = resolve_options({**base, "learning_rate": "1e-3"}, {})
    assert same.digest() == moved.digest()
    assert same.digest() != changed.digest()
