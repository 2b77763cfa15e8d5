"""Child manifests carry the tracking URI without its userinfo (argv and env are readable
by anyone who can get a pod); credentials reach workloads through their Secret only."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kubellm.api import parse_llm
from kubellm.operator.builders import (
    build_loadtest_job,
    build_serving_deployment,
    build_training_job,
)
from kubellm.operator.config import OperatorConfig

REPO = Path(__file__).resolve().parents[3]


def test_no_child_sees_the_userinfo_of_the_operators_tracking_uri() -> None:
    obj = yaml.safe_load((REPO / "examples/tiny-pretrain.yaml").read_text())
    obj["metadata"].update(uid="u", generation=1, namespace="default")
    llm = parse_llm(obj)
    config = OperatorConfig(tracking_uri="http://alice:hunter2@mlflow.mlflow.svc:5000")
    children = [
        *build_training_job(llm, config),
        build_serving_deployment(llm, "1", config, replicas=1),
        build_loadtest_job(llm, "1", "http://support-bot-candidate:8000", None, config),
    ]
    text = json.dumps(children)
    assert "hunter2" not in text and "alice" not in text
    assert "http://mlflow.mlflow.svc:5000" in text  # still told where the registry is
