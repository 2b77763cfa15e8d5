"""OperatorConfig.from_env: the chart's KUBELLM_* variables, parsed; unset keeps defaults."""

from __future__ import annotations

from kubellm.operator.config import OperatorConfig


def test_environment_overrides_defaults_with_parsed_values() -> None:
    config = OperatorConfig.from_env(
        {
            "MLFLOW_TRACKING_URI": "http://mlflow:5000",
            "KUBELLM_NAMESPACES": "ml, serving,",
            "KUBELLM_POLL_INTERVAL": "2m",
            "KUBELLM_CHILD_COMMAND": "/venv/bin/python -m kubellm",
            "KUBELLM_WEBHOOK_PORT": "9090",
            "KUBELLM_DEFAULT_TOLERATIONS": '[{"key": "gpu", "operator": "Exists"}]',
        }
    )
    assert config.tracking_uri == "http://mlflow:5000"
    assert config.namespaces == ("ml", "serving")
    assert config.poll_interval == 120.0
    assert config.command == ("/venv/bin/python", "-m", "kubellm")
    assert config.webhook_port == 9090
    assert config.default_tolerations == ({"key": "gpu", "operator": "Exists"},)


def test_kubellm_tracking_uri_wins_and_empty_values_keep_defaults() -> None:
    config = OperatorConfig.from_env(
        {
            "MLFLOW_TRACKING_URI": "http://other",
            "KUBELLM_MLFLOW_TRACKING_URI": "http://ours",
            "KUBELLM_IMAGE": "",
        }
    )
    assert config.tracking_uri == "http://ours"
    assert config.image == OperatorConfig().image
    assert OperatorConfig.from_env({}) == OperatorConfig()
