"""The quality gate in the load-test Job: the evaluation set's ConfigMap mounted read-only
(or its URI passed), the objectives as --quality, the relative one only with production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from kubellm.api import parse_llm
from kubellm.api.spec import EvaluationSpec
from kubellm.operator.builders import build_loadtest_job
from kubellm.operator.config import OperatorConfig

REPO = Path(__file__).resolve().parents[3]
CANDIDATE, PRODUCTION = "http://bot-candidate:8000", "http://bot:8000"


def _llm(evaluation: dict[str, Any] | None) -> Any:
    obj = yaml.safe_load((REPO / "examples/tiny-pretrain.yaml").read_text())
    obj["metadata"].update(uid="u", generation=1, namespace="default")
    if evaluation is not None:
        obj["spec"]["rollout"]["evaluation"] = evaluation
    return parse_llm(obj)


def _container(job: dict[str, Any]) -> dict[str, Any]:
    return dict(job["spec"]["template"]["spec"]["containers"][0])


def _arg(command: list[str], flag: str) -> str | None:
    return command[command.index(flag) + 1] if flag in command else None


def test_config_map_is_mounted_read_only_and_scored_against_production() -> None:
    llm = _llm(
        {
            "configMap": {"name": "bot-eval", "key": "eval.jsonl"},
            "maxPerplexityRegressionPercent": 20,
            "minMatchRate": "0.5",
            "maxPrompts": 40,
        }
    )
    job = build_loadtest_job(llm, "2", CANDIDATE, PRODUCTION, OperatorConfig())
    container = _container(job)
    command = container["command"]
    assert _arg(command, "--evaluation") == "/etc/kubellm/evaluation/eval.jsonl"
    assert _arg(command, "--quality") == (
        "match=exact,maxPerplexityRegressionPercent=20,minMatchRate=0.5"
    )
    assert _arg(command, "--baseline") == PRODUCTION
    assert _arg(command, "--eval-max-prompts") == "40"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "evaluation")
    assert mount == {"name": "evaluation", "mountPath": "/etc/kubellm/evaluation", "readOnly": True}
    volumes = job["spec"]["template"]["spec"]["volumes"]
    volume = next(v for v in volumes if v["name"] == "evaluation")
    assert volume["configMap"] == {
        "name": "bot-eval",
        "items": [{"key": "eval.jsonl", "path": "eval.jsonl"}],
        "optional": True,
    }


def test_a_first_version_is_judged_on_absolute_objectives_only() -> None:
    llm = _llm({"uri": "s3://evals/bot.jsonl", "maxPerplexityRegressionPercent": 20})
    command = _container(build_loadtest_job(llm, "1", CANDIDATE, None, OperatorConfig()))["command"]
    assert _arg(command, "--quality") == "match=exact"
    assert _arg(command, "--evaluation") == "s3://evals/bot.jsonl"
    assert "--baseline" not in command


def test_without_evaluation_nothing_changes() -> None:
    job = build_loadtest_job(_llm(None), "2", CANDIDATE, PRODUCTION, OperatorConfig())
    command = _container(job)["command"]
    assert "--evaluation" not in command and "--quality" not in command
    assert all(v["name"] != "evaluation" for v in job["spec"]["template"]["spec"]["volumes"])


@pytest.mark.parametrize(
    "evaluation",
    [
        {},
        {"uri": "s3://a/b", "configMap": {"name": "x", "key": "k"}},
        {"configMap": {"name": "Bad_Name", "key": "k"}},
        {"configMap": {"name": "x", "key": "../etc/passwd"}},
        {"configMap": {"name": "x", "key": ".."}},
        {"uri": "s3://a/b", "minMatchRate": "1.5"},
        {"uri": "s3://a/b", "maxPrompts": 100000},
        {"uri": "s3://a/b", "match": "fuzzy"},
    ],
)
def test_bad_evaluations_are_refused(evaluation: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        EvaluationSpec.model_validate(evaluation)


def test_the_operator_reads_the_quality_scores_into_status() -> None:
    import json

    from kubellm.operator.verdicts import parse_loadtest_message

    message = json.dumps(
        {
            "verdict": "fail",
            "perplexity": 120.5,
            "baselinePerplexity": 80.0,
            "matchRate": 0.25,
            "reasons": ["quality: perplexity 120.500 is 50.6% above production's 80.000"],
        }
    )
    figures = parse_loadtest_message(message, exit_code=1)
    assert (figures.perplexity, figures.production_perplexity, figures.match_rate) == (
        120.5,
        80.0,
        0.25,
    )
    hostile = parse_loadtest_message('{"verdict": "pass", "perplexity": "1e999"}', exit_code=0)
    assert hostile.perplexity is None
