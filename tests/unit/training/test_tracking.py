"""Pure decisions of the MLflow side: metric names, the quality gate, pinned requirements."""

from __future__ import annotations

from kubellm.training.cli import EXIT_CODES, error_kind, unreachable_message
from kubellm.training.errors import DatasetError, QualityGateFailed
from kubellm.training.tracking import gate_verdict, metric_logs, pip_requirements


def test_trainer_logs_become_finite_metrics_under_our_names() -> None:
    logs = {"loss": 2.5, "learning_rate": 1e-3, "grad_norm": float("nan"), "epoch": 1,
            "tokens_per_second": None, "train_runtime": 3.0, "flag": True}  # fmt: skip
    assert metric_logs(logs) == {"loss": 2.5, "learning_rate": 1e-3, "epoch": 1.0}


def test_quality_gate() -> None:
    assert gate_verdict(2.0, None) is None
    assert gate_verdict(2.0, 2.5) is None
    assert gate_verdict(3.0, 2.5) == "quality gate: eval loss 3.0000 > --max-eval-loss 2.5"
    assert "unavailable" in (gate_verdict(None, 2.5) or "")


def test_logged_models_pin_what_loading_needs() -> None:
    reqs = pip_requirements()
    assert any(r.startswith("torch==") for r in reqs)
    assert any(r.startswith("transformers==") for r in reqs)
    assert not any("torchvision" in r for r in reqs)
    assert any(r.startswith("peft") for r in pip_requirements(adapter=True))


def test_exit_codes_by_error_category() -> None:
    from kubellm.registry import RegistryUnavailable

    assert EXIT_CODES[error_kind(DatasetError("x"))] == 2
    assert EXIT_CODES[error_kind(RegistryUnavailable("x"))] == 3
    assert EXIT_CODES[error_kind(QualityGateFailed("x"))] == 4
    assert EXIT_CODES[error_kind(RuntimeError("x"))] == 1


def test_unreachable_registry_message_names_the_cause() -> None:
    detail = 'API request failed with exception (Caused by NewConnectionError("x: [Errno 111] '
    detail += 'Connection refused"))'
    assert unreachable_message("http://m:5000", detail) == (
        "MLflow registry at http://m:5000 cannot be reached (Connection refused)"
    )
