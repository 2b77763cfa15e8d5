"""The README's LLM reference is generated from the CRD schema and kept current."""

from __future__ import annotations

from pathlib import Path

from kubellm.api.reference import BEGIN, END, reference_markdown

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_embeds_the_current_reference() -> None:
    text = README.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == reference_markdown(), "stale: run `kubellm crd --reference`"


def test_reference_documents_every_spec_section() -> None:
    ref = reference_markdown()
    for field in (
        "spec.model.registeredModel",
        "spec.training.hyperparameters.loraRank",
        "spec.serving.replicas.max",
        "spec.rollout.loadTest.slo.p95LatencyMs",
        "spec.mlflow.trackingUri",
    ):
        assert f"`{field}`" in ref
