"""The gate end to end against real HTTP servers on loopback (a small OpenAI-compatible one).

Each case runs Locust for a few seconds; users are few and servers add latency on purpose,
so the suite stays light on a busy two-core machine.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.request

from tests.conftest import free_port
from tests.integration.loadtests.fake_openai_server import parse_metrics

LENIENT = (
    "p95LatencyMs=2000,maxErrorRate=0.01,minRequestsPerSecond=5,"
    "p95TimeToFirstTokenMs=2000,minTokensPerSecond=10"
)


def test_healthy_server_passes_and_leaves_reports(fake_server, gate, tmp_path):
    url, behaviour = fake_server(latency_s=0.02, token_interval_s=0.002)
    run = gate(url, "--warmup", "1s", "--slo", LENIENT)
    assert run.code == 0, run.stdout
    assert run.doc["verdict"] == "pass" and run.doc["reasons"] == []
    fig = run.figures
    assert fig["completed"] and fig["failures"] == 0 and fig["requests"] > 50
    assert fig["p95LatencyMs"] >= 20  # the server's own 20 ms latency is in the figure
    assert fig["p95TimeToFirstTokenMs"] is not None and fig["p95InterTokenLatencyMs"] is not None
    assert fig["tokensPerSecond"] > 0
    assert abs(fig["durationSeconds"] - 3.0) < 0.1  # the 1 s warm-up is not measured
    served = sum(n for (_, status), n in behaviour.counts.items() if status == 200)
    assert served > 1.15 * fig["requests"]  # ... though the server did answer it
    for name in ("report.html", "locust_stats.csv", "locust_failures.csv", "locust.log"):
        assert (run.out / name).exists(), name
    assert "TTFT" in (run.out / "locust_stats.csv").read_text()
    assert re.search(r"\[candidate\] +\d+\.\ds measuring users=4 rps=[\d.]+ p95=", run.stdout)
    assert "verdict PASS" in run.stdout
    summary = json.loads((tmp_path / "termination-log").read_text())
    assert summary["verdict"] == "pass" and summary["p95LatencyMs"] == fig["p95LatencyMs"]


def test_injected_latency_fails_on_p95_with_the_figure_in_the_reason(fake_server, gate):
    url, _ = fake_server(latency_s=0.15)
    run = gate(url, "--slo", "p95LatencyMs=100,maxErrorRate=0.01", "--stream-ratio", "0")
    assert run.code == 1
    p95 = run.figures["p95LatencyMs"]
    assert p95 >= 150
    assert run.doc["reasons"] == [f"p95 latency {p95:g} ms exceeds p95LatencyMs=100 ms"]


def test_five_percent_errors_fail_on_error_rate(fake_server, gate):
    url, _ = fake_server(latency_s=0.01, error_ratio=0.05)
    run = gate(url, "--slo", "p95LatencyMs=2000,maxErrorRate=0.01")
    assert run.code == 1
    fig = run.figures
    assert 0.04 <= fig["errorRate"] <= 0.06
    [reason] = run.doc["reasons"]
    assert reason.startswith(f"error rate {fig['errorRate'] * 100:.2f}%")
    assert "exceeds maxErrorRate=0.01" in reason and "HTTP 500" in reason


def test_dead_target_is_an_error_naming_the_url(gate):
    url = f"http://127.0.0.1:{free_port()}"
    run = gate(url, "--slo", "maxErrorRate=1")
    assert run.code == 2
    assert run.doc["verdict"] == "error" and run.doc["passed"] is False
    assert run.doc["reasons"][0].startswith(f"--target unreachable: {url}/v1/models")


def test_target_dying_mid_run_fails(fake_server, gate):
    from tests.integration.loadtests.fake_openai_server import running_server

    server = running_server()
    url, _ = server.__enter__()
    stopper = threading.Timer(1.5, server.__exit__, args=(None, None, None))
    stopper.start()
    try:
        run = gate(url, "--slo", "maxErrorRate=0.01", "--request-timeout", "2s")
    finally:
        stopper.join()
    assert run.code == 1
    assert run.doc["verdict"] == "fail"
    assert run.figures["errorRate"] > 0.01
    assert "connection failed" in run.doc["reasons"][0]


def test_baseline_catches_a_candidate_fifty_percent_slower_than_production(fake_server, gate):
    # 100 ms vs 150 ms: large enough that CPU contention on a busy machine cannot hide it
    production, _ = fake_server(latency_s=0.10)
    candidate, _ = fake_server(latency_s=0.15)
    run = gate(
        candidate,
        "--baseline",
        production,
        "--stream-ratio",
        "0",
        "--slo",
        "maxLatencyRegressionPercent=20,maxErrorRate=0.01",
    )
    assert run.code == 1
    cand, base = run.figures["p95LatencyMs"], run.doc["baselineFigures"]["p95LatencyMs"]
    assert base >= 100 and cand >= 150
    [reason] = run.doc["reasons"]
    assert "above the baseline's" in reason and "maxLatencyRegressionPercent=20" in reason
    assert (run.out / "baseline" / "report.html").exists()
    assert "[baseline]" in run.stdout


def test_figures_agree_with_the_servers_own_counts_with_two_workers(fake_server, gate):
    url, _ = fake_server(latency_s=0.01, tokens=8)
    run = gate(url, "--workers", "2", "--max-tokens", "16", "--slo", "maxErrorRate=0.01")
    assert run.code == 0, run.stdout
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as resp:
        counts = parse_metrics(resp.read().decode())
    served = sum(n for (_, status), n in counts.items() if status == 200)
    measured = run.figures["requests"]
    assert measured > 100
    assert abs(measured - served) / served <= 0.02, (measured, served)
    # every successful response carried 8 tokens, counted from usage or the stream
    assert abs(run.figures["tokens"] - 8 * measured) / (8 * measured) <= 0.02


def test_bad_input_writes_an_error_verdict_and_exits_2(gate):
    run = gate("http://127.0.0.1:1", "--slo", "p95LatencyMs=fast")
    assert run.code == 2
    assert run.doc["verdict"] == "error"
    assert "--slo: p95LatencyMs='fast' is not a number" in run.doc["reasons"][0]
    zero = gate("http://127.0.0.1:1", "--slo", "maxErrorRate=0.1", users="0")
    assert zero.code == 2 and "--users" in zero.doc["reasons"][0]
