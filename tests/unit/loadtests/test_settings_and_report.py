"""Command-line settings (flags and KUBELLM_LOADTEST_* variables) and the report documents."""

from __future__ import annotations

import argparse
import json

import pytest

from kubellm.loadtests.figures import Figures, Percentiles, read_figures, write_figures
from kubellm.loadtests.report import (
    build_report,
    mlflow_metrics,
    termination_summary,
    version_tags,
    write_report,
)
from kubellm.loadtests.settings import env_name, normalise_url, settings_from_args
from kubellm.loadtests.slo import InputError
from kubellm.loadtests.verdict import RunResult, Verdict


def parse(argv, monkeypatch=None, env=None):
    from kubellm.loadtests.cli import register

    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["loadtest", *argv])


BASE = ["--target", "http://svc:8000", "--slo", "p95LatencyMs=500", "--out", "out"]


def test_defaults_give_a_valid_sixty_second_run():
    s = settings_from_args(parse(BASE))
    assert s.target == "http://svc:8000"
    assert (s.users, s.duration_s, s.warmup_s, s.workers) == (10, 60.0, 0.0, 1)
    assert s.objectives.p95_latency_ms == 500


def test_every_flag_can_come_from_the_environment(monkeypatch, tmp_path):
    key = tmp_path / "key"
    key.write_text("sk-test\n")
    env = {
        "KUBELLM_LOADTEST_TARGET": "http://cand:8000/v1/",
        "KUBELLM_LOADTEST_USERS": "3",
        "KUBELLM_LOADTEST_SPAWN_RATE": "1.5",
        "KUBELLM_LOADTEST_DURATION": "1m30s",
        "KUBELLM_LOADTEST_WARMUP": "10s",
        "KUBELLM_LOADTEST_WORKERS": "2",
        "KUBELLM_LOADTEST_SLO": "maxErrorRate=0.01,maxLatencyRegressionPercent=10",
        "KUBELLM_LOADTEST_BASELINE": "http://prod:8000",
        "KUBELLM_LOADTEST_API_KEY_FILE": str(key),
        "KUBELLM_LOADTEST_STREAM_RATIO": "0",
    }
    s = settings_from_args(parse([], monkeypatch, env))
    assert s.target == "http://cand:8000"  # trailing /v1 dropped: paths add it
    assert s.baseline == "http://prod:8000"
    assert (s.users, s.spawn_rate, s.duration_s, s.warmup_s, s.workers) == (3, 1.5, 90, 10, 2)
    assert s.api_key == "sk-test" and s.stream_ratio == 0
    assert env_name("--api-key-file") == "KUBELLM_LOADTEST_API_KEY_FILE"


def test_flags_override_the_environment(monkeypatch):
    s = settings_from_args(
        parse([*BASE, "--users", "7"], monkeypatch, {"KUBELLM_LOADTEST_USERS": "3"})
    )
    assert s.users == 7


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--slo", "p95LatencyMs=1"], "--target is required"),
        (["--target", "svc:8000", "--slo", "p95LatencyMs=1"], "--target: 'svc:8000' is not"),
        (["--target", "http://h:99999", "--slo", "p95LatencyMs=1"], "invalid port"),
        (["--target", "http://h"], "--slo is required"),
        ([*BASE, "--users", "0"], "--users: 0 is too small"),
        ([*BASE, "--users", "many"], "--users: 'many' is not a whole number"),
        ([*BASE, "--spawn-rate", "0"], "--spawn-rate"),
        ([*BASE, "--duration", "60"], "--duration: '60' has no unit"),
        ([*BASE, "--duration", "soon"], "--duration: 'soon' is not a duration"),
        ([*BASE, "--warmup", "x"], "--warmup"),
        ([*BASE, "--workers", "0"], "--workers"),
        ([*BASE, "--chat-ratio", "1.5"], "--chat-ratio: 1.5 must be between 0 and 1"),
        ([*BASE, "--max-tokens", "0"], "--max-tokens"),
        ([*BASE, "--slo", "p95=1"], "unknown objective 'p95'"),
        ([*BASE, "--slo", "maxLatencyRegressionPercent=10"], "needs --baseline"),
        ([*BASE, "--slo", "p95TimeToFirstTokenMs=10", "--stream-ratio", "0"], "--stream-ratio"),
        ([*BASE, "--prompts", "/nonexistent/prompts.txt"], "--prompts: cannot read"),
        ([*BASE, "--api-key-file", "/nonexistent/key"], "--api-key-file: cannot read"),
        ([*BASE, "--model-version", "3"], "--model-version needs --registered-model"),
        (
            [*BASE, "--registered-model", "bot", "--tracking-uri", "sqlite:///x.db"],
            "--registered-model needs --model-version",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_flag(argv, fragment):
    with pytest.raises(InputError) as info:
        settings_from_args(parse(argv))
    assert fragment in str(info.value)


def test_url_normalisation_keeps_a_path_prefix():
    assert normalise_url("https://gw.example/llm/v1", "--target") == "https://gw.example/llm"


def sample_figures(**kw) -> Figures:
    lat = Percentiles(count=100, p50=10, p90=20, p95=25, p99=30, max=40, avg=12.5)
    return Figures(
        requests=100,
        failures=1,
        duration_s=5,
        planned_duration_s=5,
        completed=True,
        latency=lat,
        ttft=lat,
        itl=None,
        tokens=800,
        users=4,
        **kw,
    )


def test_figures_round_trip_through_their_json_file(tmp_path):
    fig = sample_figures()
    write_figures(tmp_path / "f.json", fig)
    assert read_figures(tmp_path / "f.json") == fig
    assert fig.to_dict()["requestsPerSecond"] == 20 and fig.to_dict()["tokensPerSecond"] == 160
    (tmp_path / "bad.json").write_text("{half")
    assert read_figures(tmp_path / "bad.json") is None
    assert read_figures(tmp_path / "missing.json") is None


def test_report_documents_carry_figures_objectives_and_verdict(tmp_path, monkeypatch):
    s = settings_from_args(
        parse(
            [
                *BASE,
                "--registered-model",
                "bot",
                "--model-version",
                "3",
                "--tracking-uri",
                "sqlite:///x.db",
            ]
        )
    )
    reasons = tuple(f"reason {i}: " + "x" * 2000 for i in range(30))
    doc = build_report(
        s,
        "m",
        Verdict(False, reasons),
        RunResult(sample_figures()),
        None,
        started_at=0,
        finished_at=7.5,
    )
    assert doc["verdict"] == "fail" and doc["objectives"] == {"p95LatencyMs": 500}
    assert doc["figures"]["p95LatencyMs"] == 25 and doc["wallSeconds"] == 7.5
    monkeypatch.setenv("KUBELLM_TERMINATION_LOG", str(tmp_path / "term"))
    text = write_report(tmp_path / "out", doc)
    assert len(text.encode()) <= 4096
    summary = json.loads((tmp_path / "term").read_text())
    assert summary["verdict"] == "fail" and summary["p95LatencyMs"] == 25
    assert summary["modelVersion"] == "3"
    assert json.loads((tmp_path / "out" / "verdict.json").read_text())["reasons"] == list(reasons)
    assert termination_summary(doc)["reasons"][0].startswith("reason 0")

    metrics = mlflow_metrics(doc)
    assert metrics["p95_latency_ms"] == 25 and metrics["passed"] == 0
    assert "p95_inter_token_latency_ms" not in metrics  # missing, not zero
    tags = version_tags(doc)
    assert tags["kubellm.loadtest.verdict"] == "fail"
    assert tags["kubellm.loadtest.p95_ms"] == "25"
    assert tags["kubellm.loadtest.rps"] == "20"
    assert tags["kubellm.loadtest.tokens_per_s"] == "160"
