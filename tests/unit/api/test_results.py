"""The results of `kubellm train` and `kubellm loadtest`: one class each, written by the Job
and read by the operator, in one casing; a hostile termination message never crashes the
reader and never passes a gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubellm.api.results import (
    MAX_REASONS,
    MAX_TEXT,
    LoadTestSummary,
    TrainingOutcome,
    TrainingSummary,
)
from kubellm.api.vocabulary import LoadTestVerdict
from kubellm.loadtests.report import termination_summary
from kubellm.operator.verdicts import NO_VERDICT, parse_loadtest_message, parse_training_message
from kubellm.termination import write_termination_message

TRAINED = TrainingSummary(
    status=TrainingOutcome.SUCCEEDED,
    llm="support-bot",
    method="lora",
    registered_model="support-bot",
    run_id="0123456789abcdef0123456789abcdef",
    model_version="12",
    alias="candidate",
    base_model="models:/support-bot/11",
    dataset_digest="a1b2c3d4",
    parameters=123456,
    trainable_parameters=2048,
    steps=40,
    steps_run=30,
    resumed_from_step=10,
    train_loss=2.25,
    initial_eval_loss=5.5,
    eval_loss=2.5,
    perplexity=12.182,
    tokens_per_second=1234.5,
    train_seconds=17.25,
    duration_seconds=20.5,
)
TESTED = LoadTestSummary(
    verdict=LoadTestVerdict.FAIL,
    p50_latency_ms=40.0,
    p95_latency_ms=120.5,
    p99_latency_ms=300.0,
    requests_per_second=20.25,
    tokens_per_second=160.0,
    error_rate=0.015,
    requests=300,
    p95_time_to_first_token_ms=55.0,
    reasons=["error rate 1.50% exceeds maxErrorRate=0.01"],
    model_version="3",
    registered_model="support-bot",
    mlflow_run_id="feedbeef",
)


@pytest.mark.parametrize("result", [TRAINED, TESTED], ids=["train", "loadtest"])
def test_a_result_survives_the_termination_message_unchanged(
    result: TrainingSummary | LoadTestSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBELLM_TERMINATION_LOG", str(tmp_path / "term"))
    written = write_termination_message(result.dump())
    assert len(written.encode()) <= 4096
    assert type(result).from_message((tmp_path / "term").read_text()) == result


@pytest.mark.parametrize("result", [TRAINED, TESTED], ids=["train", "loadtest"])
def test_results_are_written_in_camel_case_like_the_crd(
    result: TrainingSummary | LoadTestSummary,
) -> None:
    keys = set(result.dump())
    assert keys and not any("_" in key for key in keys)
    assert {"modelVersion", "p95LatencyMs", "runId", "errorKind"} & keys


def test_snake_case_keys_are_not_read() -> None:
    message = json.dumps({"model_version": "7", "run_id": "r1", "eval_loss": 1.0})
    assert TrainingSummary.from_message(message) == TrainingSummary()
    figures = parse_loadtest_message(json.dumps({"verdict": "fail", "p95_ms": 5.0}), 1)
    assert figures.p95_ms is None


def test_unknown_fields_are_ignored() -> None:
    message = json.dumps({**TRAINED.dump(), "gpuHours": 3, "figures": {"p95LatencyMs": 1}})
    assert TrainingSummary.from_message(message) == TRAINED


def test_what_the_load_test_writes_is_what_the_operator_reads() -> None:
    doc: dict[str, Any] = {
        "verdict": "pass",
        "passed": True,
        "reasons": [],
        "figures": {"p95LatencyMs": 25.0, "requestsPerSecond": 20.0, "requests": 150},
        "settings": {"modelVersion": "4", "registeredModel": "bot"},
    }
    message = json.dumps(termination_summary(doc))
    assert LoadTestSummary.from_message(message).model_version == "4"
    figures = parse_loadtest_message(message, 0)
    assert figures.verdict is LoadTestVerdict.PASS
    assert (figures.p95_ms, figures.requests_per_second, figures.requests) == (25.0, 20.0, 150)


def test_what_training_writes_is_what_the_operator_reads() -> None:
    summary = parse_training_message(json.dumps(TRAINED.dump()))
    assert (summary.model_version, summary.run_id, summary.eval_loss) == ("12", TRAINED.run_id, 2.5)
    failed = TrainingSummary(
        status=TrainingOutcome.FAILED, error="dataset is empty", error_kind="bad_input"
    )
    assert parse_training_message(json.dumps(failed.dump())).error == "dataset is empty"


def test_a_message_that_is_not_json_is_kept_as_the_error() -> None:
    log = "Traceback (most recent call last):\n" + "x" * 2000 + "\nRuntimeError: CUDA OOM"
    assert (TrainingSummary.from_message(log).error or "").endswith("RuntimeError: CUDA OOM")
    figures = parse_loadtest_message(log, 2)
    assert figures.verdict is LoadTestVerdict.ERROR
    assert figures.reasons[0].endswith("CUDA OOM") and len(figures.reasons[0]) <= 500


HOSTILE = [
    "[" * 5000,  # nested deeper than the JSON parser recurses
    '{"a":' * 3000 + "1" + "}" * 3000,
    "1" * 5000,  # an int beyond Python's digit limit
    '{"verdict": "pass", "requests": 1e999, "p95LatencyMs": NaN, "errorRate": -Infinity}',
    '{"verdict": {"pass": true}, "reasons": [[["deep"]], {"x": 1}, true, null]}',
    '{"modelVersion": "1; rm -rf /", "runId": "../../etc", "evalLoss": "0.1"}',
    '{"modelVersion": 99999999999999999999999, "steps": 1e300, "parameters": -1e20}',
    '"pass"',
    "[1, 2, 3]",
    "null",
    "\x00\ufffd\ud800",
    json.dumps({"verdict": "pass", "reasons": ["r" * 100_000] * 1000}),
    json.dumps({"error": "e" * 100_000, "llm": ["a"] * 10_000}),
]


@pytest.mark.parametrize("message", HOSTILE)
def test_a_hostile_message_never_raises_and_never_passes_a_failed_job(message: str) -> None:
    summary = TrainingSummary.from_message(message)
    assert summary.model_version is None or summary.model_version.isdigit()
    assert summary.error is None or len(summary.error) <= MAX_TEXT
    assert summary.llm is None or len(summary.llm) <= MAX_TEXT
    tested = LoadTestSummary.from_message(message)
    assert len(tested.reasons) <= MAX_REASONS and all(len(r) <= 500 for r in tested.reasons)
    for number in (tested.p95_latency_ms, tested.error_rate):
        assert number is None or abs(number) < float("inf")
    figures = parse_loadtest_message(message, 1)
    assert figures.verdict is not LoadTestVerdict.PASS and figures.reasons


def test_a_message_with_no_verdict_fails_the_gate_with_a_reason() -> None:
    figures = parse_loadtest_message("{}", 0)
    assert figures.verdict is LoadTestVerdict.FAIL and figures.reasons == [NO_VERDICT]
