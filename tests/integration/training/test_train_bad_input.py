"""Bad input: one-line error, summary with "error", non-zero exit, run FAILED, no version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubellm.training.tracking import TAG_LLM
from tests.conftest import free_port
from tests.integration.training.conftest import CORPUS, FAST, TrainResult, train


def assert_failed_cleanly(result: TrainResult, *, code: int, cause: str) -> None:
    assert result.code == code, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kubellm train: error: ") and cause in last, last
    assert result.summary["status"] == "failed" and cause in result.summary["error"]


def assert_nothing_registered(registry: Any, name: str, *, run_expected: bool) -> None:
    client = registry.mlflow
    assert client.search_model_versions(f"name='{name}'") == []
    exp = client.get_experiment_by_name("kubellm")
    runs = client.search_runs([exp.experiment_id], f"tags.`{TAG_LLM}` = '{name}'")
    assert [r.info.status for r in runs] == (["FAILED"] if run_expected else [])
    if run_expected:
        assert runs[0].data.tags["kubellm.dev/error"]


def pretrain_args(name: str, uri: str, work: Path, dataset: Path = CORPUS) -> list[str]:
    return ["--llm-name", name, "--method", "pretrain", "--architecture", "gpt2-tiny",
            "--dataset", str(dataset), "--tracking-uri", uri, "--output-dir", str(work / "out"),
            "--max-steps", "3", "--vocab-size", "300", *FAST]  # fmt: skip


def test_missing_dataset(mlflow_uri: str, registry: Any, tmp_path: Path) -> None:
    result = train(
        pretrain_args("bad-missing", mlflow_uri, tmp_path, tmp_path / "no.txt"), tmp_path
    )
    assert_failed_cleanly(result, code=2, cause="does not exist")
    assert_nothing_registered(registry, "bad-missing", run_expected=True)


def test_empty_dataset(mlflow_uri: str, registry: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = train(pretrain_args("bad-empty", mlflow_uri, tmp_path, empty), tmp_path)
    assert_failed_cleanly(result, code=2, cause="is empty")
    assert_nothing_registered(registry, "bad-empty", run_expected=True)


def test_unknown_preset(mlflow_uri: str, registry: Any, tmp_path: Path) -> None:
    args = pretrain_args("bad-preset", mlflow_uri, tmp_path)
    args[args.index("gpt2-tiny")] = "gpt5-huge"
    result = train(args, tmp_path)
    assert_failed_cleanly(result, code=2, cause="unknown architecture preset 'gpt5-huge'")
    assert_nothing_registered(registry, "bad-preset", run_expected=True)


@pytest.mark.parametrize(
    ("base", "cause"),
    [
        ("models:/no-such-model@candidate", "not found in the registry"),
        ("{tmp}/broken", "cannot load base model"),
        ("{tmp}/not-a-model", "no config.json"),
    ],
)
def test_unreadable_base_model(
    base: str, cause: str, mlflow_uri: str, registry: Any, tmp_path: Path
) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    (tmp_path / "not-a-model").mkdir()
    name = f"bad-base-{abs(hash(base)) % 10_000}"
    result = train(
        ["--llm-name", name, "--method", "full", "--base-model", base.format(tmp=tmp_path),
         "--dataset", str(CORPUS), "--tracking-uri", mlflow_uri,
         "--output-dir", str(tmp_path / "out"), *FAST],
        tmp_path,
    )  # fmt: skip
    assert_failed_cleanly(result, code=2, cause=cause)
    assert_nothing_registered(registry, name, run_expected=True)


def test_unreachable_registry(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    result = train(
        pretrain_args("bad-registry", uri, tmp_path), tmp_path, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"
    )
    assert_failed_cleanly(result, code=3, cause=f"MLflow registry at {uri} cannot be reached")
    assert result.summary["errorKind"] == "registry_unavailable"


@pytest.mark.parametrize(
    ("flag", "value", "cause"),
    [
        ("--learning-rate", "5", "--learning-rate: 5.0 is out of range"),
        ("--max-steps", "0", "--max-steps: 0 is out of range"),
        ("--eval-fraction", "0.75", "--eval-fraction: 0.75 is out of range"),
    ],
)
def test_out_of_range_hyperparameters(
    flag: str, value: str, cause: str, mlflow_uri: str, registry: Any, tmp_path: Path
) -> None:
    result = train([*pretrain_args("bad-hparams", mlflow_uri, tmp_path), flag, value], tmp_path)
    assert_failed_cleanly(result, code=2, cause=cause)
    assert_nothing_registered(registry, "bad-hparams", run_expected=False)


def test_sequence_longer_than_the_model_is_refused(
    mlflow_uri: str, registry: Any, tmp_path: Path
) -> None:
    result = train(
        [*pretrain_args("bad-seq", mlflow_uri, tmp_path), "--sequence-length", "512"], tmp_path
    )
    assert_failed_cleanly(result, code=2, cause="exceeds the model's 256 positions")
    assert_nothing_registered(registry, "bad-seq", run_expected=True)


def test_missed_quality_gate_registers_nothing(
    mlflow_uri: str, registry: Any, tmp_path: Path
) -> None:
    args = [*pretrain_args("bad-gate", mlflow_uri, tmp_path), "--max-eval-loss", "0.01"]
    result = train(args, tmp_path)
    assert_failed_cleanly(result, code=4, cause="quality gate: eval loss")
    assert result.summary["errorKind"] == "quality_gate"
    assert_nothing_registered(registry, "bad-gate", run_expected=True)
