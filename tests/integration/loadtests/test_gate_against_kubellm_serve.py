"""The gate against the real ``kubellm serve`` with the tiny model: what the Job really runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.conftest import REPO_ROOT, free_port


def _requests_served(metrics: str) -> int:
    """Generation requests answered 200, from the server's Prometheus counter."""
    total = 0
    for line in metrics.splitlines():
        served = 'status="200"' in line and "completions" in line
        if line.startswith("kubellm_requests_total{") and served:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


@pytest.fixture(scope="module")
def kubellm_serve(tiny_model_dir, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """``kubellm serve`` on loopback with an API key; yields (base URL, key file)."""
    tmp_path = tmp_path_factory.mktemp("serve")
    key_file = tmp_path / "api-key"
    key_file.write_text("sk-loadtest\n")
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubellm", "serve", "--model", str(tiny_model_dir),
         "--host", "127.0.0.1", "--port", str(port), "--api-key-file", str(key_file),
         "--max-new-tokens", "64", "--shutdown-grace", "2"],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, "kubellm serve did not become ready"
            time.sleep(0.3)
        yield url, str(key_file)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def test_real_server_with_tiny_model_passes_and_counts_agree(kubellm_serve, gate, repo_root):
    url, key_file = kubellm_serve
    run = gate(
        url,
        "--api-key-file", key_file,
        "--prompts", str(repo_root / "examples/data/prompts.txt"),
        "--max-tokens", "8",
        # lenient: the tiny model on a busy two-core machine may serve only a few requests/s
        "--slo", "p95LatencyMs=20000,maxErrorRate=0.01,p95TimeToFirstTokenMs=20000,"
                 "minTokensPerSecond=0.1,minRequestsPerSecond=0.1",
        duration="4s",
    )  # fmt: skip
    assert run.code == 0, run.stdout + str(run.doc["reasons"])
    fig = run.figures
    assert fig["failures"] == 0 and fig["requests"] >= 3
    assert fig["p95TimeToFirstTokenMs"] is not None and fig["tokens"] > 0
    assert run.doc["model"]  # taken from the server's /v1/models

    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        served = _requests_served(resp.read().decode())
    # within 2%, give or take the (at most 4) requests in flight when the users stopped
    assert abs(served - fig["requests"]) <= max(0.02 * served, 4), (served, fig["requests"])


def test_wrong_api_key_fails_on_error_rate(kubellm_serve, gate, tmp_path):
    url, _ = kubellm_serve
    wrong = tmp_path / "wrong-key"
    wrong.write_text("sk-wrong")
    run = gate(url, "--api-key-file", str(wrong), "--slo", "maxErrorRate=0.01", duration="1s")
    assert run.code == 1
    assert run.figures["errorRate"] == 1.0
    assert "HTTP 401" in run.doc["reasons"][0]
