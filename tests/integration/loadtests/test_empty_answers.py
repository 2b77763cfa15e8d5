"""The gate against a server that answers 200 at once and generates nothing: every such
request is an error, so the candidate fails on its error rate (issue 12 item 8)."""

from __future__ import annotations


def test_answers_without_generated_text_fail_the_gate(fake_server, gate):
    url, behaviour = fake_server(tokens=0)
    run = gate(url, "--slo", "p95LatencyMs=2000,maxErrorRate=0.01", duration="2s", users="2")
    assert run.code == 1, run.stdout
    fig = run.figures
    assert fig["requests"] > 0 and fig["errorRate"] == 1.0
    [reason] = run.doc["reasons"]
    assert "error rate 100.00%" in reason and "no generated text" in reason
    served = sum(n for (_, status), n in behaviour.counts.items() if status == 200)
    assert served >= fig["requests"]  # the server said 200 every time
