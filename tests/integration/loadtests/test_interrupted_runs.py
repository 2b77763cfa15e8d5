"""Runs that do not reach the end of their window never pass, and leave no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil

from kubellm.loadtests.plan import LocustPlan
from kubellm.loadtests.runner import RunSpec, run_all
from kubellm.loadtests.slo import parse_slo
from kubellm.loadtests.verdict import judge
from tests.conftest import REPO_ROOT


def _processes_mentioning(text: str) -> list[psutil.Process]:
    """Processes whose command line or working directory (Locust workers) mention ``text``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = proc.info["cmdline"] or ()
        if any(text in part for part in cmdline) or text in (proc.info["cwd"] or ""):
            found.append(proc)
    return found


def test_locust_stopped_before_the_window_ends_reports_a_cut_short_run(fake_server, tmp_path):
    url, _ = fake_server(latency_s=0.01)
    plan = LocustPlan(
        label="candidate",
        model="fake-model",
        figures_path=str(tmp_path / "figures.json"),
        duration_s=40.0,
        progress_interval_s=1.0,
    )
    spec = RunSpec(plan, url, tmp_path, users=2, spawn_rate=10)
    # A negative allowance puts the runner's deadline 10 s into a 40 s window: time for
    # Locust to start and send requests on a busy machine (2 s was not, under a CPU hog).
    result = run_all([spec], lambda _: None, startup_allowance_s=-30.0)["candidate"]
    assert result.figures is not None and result.figures.requests > 0
    assert not result.figures.completed and result.figures.duration_s < 40.0
    assert "did not finish" in (result.problem or "")
    verdict = judge(result, parse_slo("maxErrorRate=1"))
    assert not verdict.passed
    assert any("run cut short" in r for r in verdict.reasons)
    assert not _processes_mentioning(str(tmp_path))


def test_sigterm_stops_the_gate_and_every_locust_process_with_an_error_verdict(
    fake_server, tmp_path
):
    url, _ = fake_server(latency_s=0.01)
    out = tmp_path / "out"
    env = {**os.environ, "KUBELLM_TERMINATION_LOG": str(tmp_path / "term")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubellm", "loadtest", "--target", url, "--users", "2",
         "--workers", "2", "--duration", "60s", "--slo", "maxErrorRate=0.01",
         "--out", str(out), "--progress-every", "1s"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            if raw.startswith(b"[candidate]"):
                break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    doc = json.loads((out / "verdict.json").read_text())
    assert doc["verdict"] == "error" and "interrupted" in doc["reasons"][0]
    assert json.loads((tmp_path / "term").read_text())["verdict"] == "error"
    assert not _processes_mentioning(str(out))
