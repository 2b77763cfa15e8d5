"""`kubellm train` end to end on CPU: pretrain -> v1, full -> v2, lora -> v3, on sqlite MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubellm.training.tracking import TAG_BASE_MODEL, TAG_GENERATION, TAG_LLM, TAG_METHOD
from tests.integration.training.conftest import CORPUS, FAST, MODEL, train


def test_pretrain_lowers_eval_loss_registers_v1_and_sets_candidate(
    pretrained: Any, registry: Any
) -> None:
    result, candidate_after, _ = pretrained
    s = result.summary
    assert s["status"] == "succeeded" and s["modelVersion"] == "1"
    assert s["evalLoss"] < s["initialEvalLoss"]
    assert candidate_after == "1"
    assert s["tokensPerSecond"] > 0 and s["steps"] == 40
    tags = registry.get_version_tags(MODEL, "1")
    assert tags[TAG_LLM] == MODEL and tags[TAG_GENERATION] == "1" and tags[TAG_METHOD] == "pretrain"


def test_progress_lines_show_step_loss_throughput_and_eta(pretrained: Any) -> None:
    result, _, _ = pretrained
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("step ")]
    assert lines[-1].startswith("step 40/40 (100%) loss ")
    assert all("tokens/s" in ln and " eta " in ln for ln in lines)
    assert len(lines) == 8  # every --logging-steps 5


def test_the_run_records_params_metrics_dataset_and_finishes(
    pretrained: Any, registry: Any
) -> None:
    result, _, _ = pretrained
    client = registry.mlflow
    run = client.get_run(result.summary["runId"])
    assert run.info.status == "FINISHED"
    assert run.data.params["method"] == "pretrain" and run.data.params["max_steps"] == "40"
    for metric in ("loss", "learning_rate", "grad_norm", "tokens_per_second"):
        history = client.get_metric_history(run.info.run_id, metric)
        assert len(history) == 8, metric
    evals = client.get_metric_history(run.info.run_id, "eval_loss")
    assert [m.step for m in evals] == [0, 40]
    assert "perplexity" in run.data.metrics
    digests = [d.dataset.digest for d in run.inputs.dataset_inputs]
    assert digests == [result.summary["datasetDigest"]]


def test_candidate_loads_from_the_registry_and_generates(pretrained: Any, mlflow_uri: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri)
    pipe = mlflow.transformers.load_model(f"models:/{MODEL}@candidate")
    out = pipe("How do I deploy a model?", max_new_tokens=8, do_sample=False)
    assert out[0]["generated_text"].startswith("How do I deploy a model?")
    assert len(out[0]["generated_text"]) > len("How do I deploy a model?")


def test_full_finetune_of_v1_registers_v2(full_tuned: Any, registry: Any) -> None:
    s = full_tuned.summary
    assert s["modelVersion"] == "2" and s["baseModel"] == f"models:/{MODEL}/1"
    assert registry.get_version_tags(MODEL, "2")[TAG_BASE_MODEL] == f"models:/{MODEL}/1"
    assert registry.resolve_alias(MODEL, "candidate") in ("2", "3")


def test_lora_on_v2_registers_v3_merged(lora_tuned: Any, registry: Any, tmp_path: Path) -> None:
    from safetensors import safe_open

    s = lora_tuned.summary
    assert s["modelVersion"] == "3" and s["baseModel"] == f"models:/{MODEL}/2"
    assert s["trainableParameters"] < s["parameters"] / 5
    assert registry.resolve_alias(MODEL, "candidate") == "3"
    model_dir = registry.download_model(f"models:/{MODEL}/3", tmp_path / "v3")
    assert not (model_dir / "adapter_config.json").exists()
    with safe_open(str(model_dir / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and not any("lora" in k for k in keys)


def test_rerun_of_a_finished_training_reports_it_again_without_a_new_version(
    pretrained: Any, registry: Any, mlflow_uri: str
) -> None:
    result, _, work = pretrained
    argv = [
        "--llm-name", MODEL, "--method", "pretrain", "--architecture", "gpt2-tiny",
        "--dataset", str(CORPUS), "--tracking-uri", mlflow_uri, "--output-dir", str(work / "out"),
        "--max-steps", "40", "--learning-rate", "3e-3", "--vocab-size", "512",
        "--generation", "1", *FAST,
    ]  # fmt: skip
    again = train(argv, work / "again")  # a pod restarted after it registered
    assert again.code == 0 and again.summary == result.summary
    assert "not retraining" in again.stdout
    versions = registry.mlflow.search_model_versions(f"name='{MODEL}'")
    assert "1" in {str(v.version) for v in versions}
    assert sum(1 for v in versions if v.run_id == result.summary["runId"]) == 1
