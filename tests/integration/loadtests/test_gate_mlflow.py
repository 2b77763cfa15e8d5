"""The gate records its evidence in MLflow: a run with the figures, tags on the model version."""

from __future__ import annotations

from kubellm.registry import Registry
from localkube.testing.mlflow import sqlite_tracking_uri


def test_verdict_is_logged_as_a_run_and_tagged_on_the_model_version(fake_server, gate, tmp_path):
    uri = sqlite_tracking_uri(tmp_path / "mlflow")
    registry = Registry(uri)
    registry.ensure_registered_model("support-bot")
    source = tmp_path / "model"
    source.mkdir()
    version = registry.mlflow.create_model_version("support-bot", source=str(source)).version

    url, _ = fake_server(latency_s=0.01)
    run = gate(
        url,
        "--slo", "p95LatencyMs=2000,maxErrorRate=0.01",
        "--tracking-uri", uri,
        "--registered-model", "support-bot",
        "--model-version", str(version),
        duration="2s",
    )  # fmt: skip
    assert run.code == 0, run.stdout
    run_id = run.doc["mlflowRunId"]

    tags = registry.get_version_tags("support-bot", str(version))
    assert tags["kubellm.loadtest.verdict"] == "pass"
    assert float(tags["kubellm.loadtest.p95_ms"]) == run.figures["p95LatencyMs"]
    assert float(tags["kubellm.loadtest.rps"]) == run.figures["requestsPerSecond"]
    assert float(tags["kubellm.loadtest.tokens_per_s"]) == run.figures["tokensPerSecond"]
    assert tags["kubellm.loadtest.run_id"] == run_id

    mlflow_run = registry.mlflow.get_run(run_id)
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.metrics["p95_latency_ms"] == run.figures["p95LatencyMs"]
    assert mlflow_run.data.metrics["passed"] == 1.0
    assert mlflow_run.data.tags["kubellm.model_version"] == str(version)
    artifacts = {a.path for a in registry.mlflow.list_artifacts(run_id, "loadtest")}
    assert {"loadtest/verdict.json", "loadtest/report.html"} <= artifacts
    # artifacts stay beside the database, never in ./mlruns of the current directory
    assert str(tmp_path) in registry.mlflow.get_run(run_id).info.artifact_uri


def test_unknown_model_version_is_an_error_before_any_load(fake_server, gate, tmp_path):
    uri = sqlite_tracking_uri(tmp_path / "mlflow")
    url, behaviour = fake_server()
    run = gate(
        url,
        "--slo", "maxErrorRate=0.01",
        "--tracking-uri", uri,
        "--registered-model", "no-such-model",
        "--model-version", "7",
    )  # fmt: skip
    assert run.code == 2 and run.doc["verdict"] == "error"
    assert run.doc["reasons"][0].startswith("--tracking-uri: ")
    assert "no-such-model" in run.doc["reasons"][0]
    assert not behaviour.counts  # no request was sent


def test_tracking_store_failing_after_the_run_turns_a_pass_into_an_error(
    fake_server, gate, monkeypatch
):
    from kubellm.loadtests import report

    def broken(*_args, **_kwargs):
        raise ConnectionError("tracking server went away")

    monkeypatch.setattr(report, "check_tracking", lambda _settings: None)
    monkeypatch.setattr(report, "log_to_mlflow", broken)
    url, _ = fake_server(latency_s=0.01)
    run = gate(
        url,
        "--slo", "maxErrorRate=0.01",
        "--tracking-uri", "http://127.0.0.1:1",
        duration="1s",
    )  # fmt: skip
    assert run.code == 2
    assert run.doc["verdict"] == "error" and run.doc["objectivesVerdict"] == "pass"
    assert run.doc["reasons"][-1] == (
        "results could not be recorded in MLflow: tracking server went away"
    )
