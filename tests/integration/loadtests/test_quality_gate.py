"""The quality gate against real ``kubellm serve`` processes: a trained tiny model as
production, an untrained one as the candidate; perplexity comes from the OpenAI API
(echo + logprobs + max_tokens 0), as it would from vLLM."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.integration.serving.conftest import Server, start_server

EVALUATION = [
    {"prompt": "Question: How do I deploy a model? Answer:"},
    {"prompt": "Question: Why was my release refused? Answer:", "reference": "zzz-never"},
    {"prompt": "Question: How do I roll back to the previous version? Answer:"},
]


@pytest.fixture(scope="module")
def servers(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from localkube.testing.tiny_model import build_tiny_model

    untrained = build_tiny_model(
        tmp_path_factory.mktemp("untrained"),
        REPO_ROOT / "examples/data/support-corpus.txt",
        train_steps=0,
    )
    logs = tmp_path_factory.mktemp("logs")
    started: dict[str, Server] = {}
    try:
        for name, model in (("good", tiny_model_dir), ("bad", untrained)):
            started[name] = start_server(str(model), logs, "--served-model-name", "tiny")
        yield {name: s.base_url for name, s in started.items()}
    finally:
        for s in started.values():
            s.stop()


@pytest.fixture
def evaluation(tmp_path: Path) -> str:
    path = tmp_path / "evaluation.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in EVALUATION))
    return str(path)


def _flags(baseline: str, evaluation: str, quality: str) -> list[str]:
    return [
        "--baseline", baseline, "--evaluation", evaluation, "--quality", quality,
        "--slo", "maxErrorRate=1", "--max-tokens", "4", "--model", "tiny",
    ]  # fmt: skip


def test_worse_perplexity_than_production_fails_the_gate(servers, evaluation, gate) -> None:
    flags = _flags(servers["good"], evaluation, "maxPerplexityRegressionPercent=20")
    run = gate(servers["bad"], *flags, duration="2s", users="1")
    quality = run.doc["quality"]
    cand, base = quality["candidate"], quality["baseline"]
    assert cand["prompts"] == base["prompts"] == 3 and cand["scoredTokens"] > 10
    assert cand["perplexity"] > base["perplexity"] * 1.2, quality
    assert run.code == 1 and run.doc["verdict"] == "fail"
    assert any("maxPerplexityRegressionPercent=20" in r for r in run.doc["reasons"])
    regression = (cand["perplexity"] - base["perplexity"]) / base["perplexity"] * 100
    assert math.isclose(quality["perplexityRegressionPercent"], regression, rel_tol=1e-3)
    summary = json.loads(Path(run.out.parent / "termination-log").read_text())
    assert summary["perplexity"] == cand["perplexity"]
    assert summary["baselinePerplexity"] == base["perplexity"]


def test_same_model_passes_and_a_missed_reference_fails_min_match_rate(
    servers, evaluation, gate
) -> None:
    flags = _flags(servers["good"], evaluation, "maxPerplexityRegressionPercent=20")
    run = gate(servers["good"], *flags, duration="2s", users="1")
    assert run.code == 0, run.doc["reasons"]
    assert run.doc["quality"]["perplexityRegressionPercent"] == pytest.approx(0, abs=1e-3)
    assert run.doc["quality"]["candidate"]["references"] == 1
    strict = _flags(servers["good"], evaluation, "minMatchRate=1,match=contains")
    run = gate(servers["good"], *strict, duration="2s", users="1")
    assert run.code == 1
    assert any("below minMatchRate=1" in r for r in run.doc["reasons"]), run.doc["reasons"]
