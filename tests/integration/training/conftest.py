"""Shared, session-scoped pieces of the training integration tests.

One sqlite MLflow per session, and one chain of trainings on it (pretrain -> v1, full -> v2,
lora -> v3) that several tests inspect, so each model is trained once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubellm.cli import main
from localkube.testing.mlflow import sqlite_tracking_uri
from tests.conftest import REPO_ROOT

CORPUS = REPO_ROOT / "examples" / "data" / "support-corpus.txt"
CHAT = REPO_ROOT / "examples" / "data" / "support-chat.jsonl"
MODEL = "bot-it"

# Small and fast on two busy cores: a 2 x 64 GPT-2, short blocks, few steps.
FAST = ["--batch-size", "8", "--sequence-length", "64", "--logging-steps", "5",
        "--save-steps", "1000"]  # fmt: skip


@dataclass
class TrainResult:
    code: int
    summary: dict[str, Any]
    stdout: str
    stderr: str


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Tiny models on shared CI cores: one thread per process avoids OpenMP threads spinning
    against the other test processes (measured here: ~10x faster under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment of a `kubellm train` child process: the source tree, one thread."""
    return dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", **extra)


def train(argv: list[str], workdir: Path, **env: str) -> TrainResult:
    """Run `kubellm train ARGV` in this process; return exit code, summary and output."""
    workdir.mkdir(parents=True, exist_ok=True)
    term = workdir / "termination-log"
    out, err = io.StringIO(), io.StringIO()
    with (
        _env(KUBELLM_TERMINATION_LOG=str(term), **env),
        _one_torch_thread(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(["train", *argv])
    summary = json.loads(term.read_text()) if term.exists() else {}
    return TrainResult(code, summary, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_tracking_uri(tmp_path_factory.mktemp("mlflow"))


@pytest.fixture(scope="session")
def registry(mlflow_uri: str) -> Any:
    from kubellm.registry import Registry

    return Registry(mlflow_uri)


@pytest.fixture(scope="session")
def pretrained(mlflow_uri: str, registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`pretrain` of gpt2-tiny on the example corpus -> version 1 (alias read right after)."""
    work = tmp_path_factory.mktemp("pretrain")
    result = train(
        ["--llm-name", MODEL, "--method", "pretrain", "--architecture", "gpt2-tiny",
         "--dataset", str(CORPUS), "--tracking-uri", mlflow_uri, "--output-dir", str(work / "out"),
         "--max-steps", "40", "--learning-rate", "3e-3", "--vocab-size", "512",
         "--generation", "1", *FAST],
        work,
    )  # fmt: skip
    assert result.code == 0, result.stderr[-3000:]
    return result, registry.resolve_alias(MODEL, "candidate"), work


@pytest.fixture(scope="session")
def full_tuned(pretrained: Any, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`full` fine-tune of version 1 on the chat examples -> version 2."""
    work = tmp_path_factory.mktemp("full")
    result = train(
        ["--llm-name", MODEL, "--method", "full", "--base-model", f"models:/{MODEL}/1",
         "--dataset", str(CHAT), "--tracking-uri", mlflow_uri, "--output-dir", str(work / "out"),
         "--max-steps", "10", "--learning-rate", "1e-3", "--generation", "2",
         *FAST, "--sequence-length", "32"],
        work,
    )  # fmt: skip
    assert result.code == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def lora_tuned(full_tuned: Any, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`lora` on version 2 (through the alias) -> version 3, merged."""
    work = tmp_path_factory.mktemp("lora")
    result = train(
        ["--llm-name", MODEL, "--method", "lora", "--base-model", f"models:/{MODEL}@candidate",
         "--dataset", str(CHAT), "--tracking-uri", mlflow_uri, "--output-dir", str(work / "out"),
         "--max-steps", "10", "--learning-rate", "1e-3", "--lora-rank", "4", "--generation", "3",
         *FAST, "--sequence-length", "32"],
        work,
    )  # fmt: skip
    assert result.code == 0, result.stderr[-3000:]
    return result
