"""The load-test Job that gates a release, and the ConfigMap of prompts it sends.

The Job runs `kubellm loadtest` against the candidate Service (with production as the
baseline when there is one) and writes its verdict to its termination message; the LLM's
objectives travel as one `--slo` argument (`slo_argument`). With `spec.rollout.evaluation`
it also scores both releases on the evaluation set (the quality gate): the set's ConfigMap
is mounted read-only, or its URI passed as is, and the objectives travel as `--quality`
(`quality_argument`); a relative objective is dropped for a first release, as the SLO's is.
"""

from __future__ import annotations

import json
from typing import Any

from kubellm.api.resource import LLM
from kubellm.api.spec import EvaluationSpec, SloSpec
from kubellm.operator.builders.common import (
    API_KEY_DIR,
    api_key_mount,
    api_key_volume,
    common_env,
    credentials,
    metadata,
    tracking_uri,
)
from kubellm.operator.config import OperatorConfig
from kubellm.operator.hardening import harden
from kubellm.operator.naming import (
    Component,
    child_labels,
    loadtest_job_name,
    prompts_configmap_name,
)

__all__ = ["build_loadtest_job", "build_prompts_configmap", "quality_argument", "slo_argument"]

PROMPTS_DIR = "/etc/kubellm/prompts"
EVALUATION_DIR = "/etc/kubellm/evaluation"
REPORT_DIR = "/report"

DEFAULT_PROMPTS = (
    "Write one sentence about Kubernetes operators.",
    "Question: How do I deploy a model? Answer:",
    "Explain what a load test measures.",
    "The production service",
)


def build_prompts_configmap(llm: LLM) -> dict[str, Any]:
    prompts = llm.spec.rollout.load_test.prompts or list(DEFAULT_PROMPTS)
    lines = "\n".join(json.dumps({"prompt": p}) for p in prompts) + "\n"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(
            llm, prompts_configmap_name(llm.name), child_labels(llm.name, Component.LOADTEST)
        ),
        "data": {"prompts.jsonl": lines},
    }


def slo_argument(slo: SloSpec) -> str:
    """The `--slo` string of `kubellm loadtest` for the LLM's objectives."""
    parts = [f"maxErrorRate={slo.max_error_rate}"]
    if slo.p95_latency_ms is not None:
        parts.append(f"p95LatencyMs={slo.p95_latency_ms}")
    if slo.p95_time_to_first_token_ms is not None:
        parts.append(f"p95TimeToFirstTokenMs={slo.p95_time_to_first_token_ms}")
    if slo.min_requests_per_second is not None:
        parts.append(f"minRequestsPerSecond={slo.min_requests_per_second}")
    if slo.min_tokens_per_second is not None:
        parts.append(f"minTokensPerSecond={slo.min_tokens_per_second}")
    if slo.max_latency_regression_percent is not None:
        parts.append(f"maxLatencyRegressionPercent={slo.max_latency_regression_percent}")
    return ",".join(parts)


def quality_argument(evaluation: EvaluationSpec, *, baseline: bool) -> str:
    """The `--quality` string of `kubellm loadtest` (without a baseline, no relative one)."""
    parts = [f"match={evaluation.match}"]
    regression = evaluation.max_perplexity_regression_percent
    if regression is not None and baseline:
        parts.append(f"maxPerplexityRegressionPercent={regression}")
    if evaluation.min_match_rate is not None:
        parts.append(f"minMatchRate={evaluation.min_match_rate}")
    return ",".join(parts)


def _evaluation(
    evaluation: EvaluationSpec | None, baseline: bool
) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
    """(arguments, volume mounts, volumes) of the quality gate."""
    if evaluation is None:
        return [], [], []
    args = [
        "--quality", quality_argument(evaluation, baseline=baseline),
        "--eval-max-prompts", str(evaluation.max_prompts),
        "--eval-max-tokens", str(evaluation.max_tokens),
    ]  # fmt: skip
    cm = evaluation.config_map
    if cm is None:
        assert evaluation.uri is not None  # the spec holds exactly one source
        return [*args, "--evaluation", evaluation.uri], [], []
    args += ["--evaluation", f"{EVALUATION_DIR}/{cm.key}"]
    mount = {"name": "evaluation", "mountPath": EVALUATION_DIR, "readOnly": True}
    volume = {
        "name": "evaluation",
        # optional: a missing ConfigMap or key lets the pod start and the gate fail with
        # "cannot read" as its reason, instead of a pod that never starts
        "configMap": {
            "name": cm.name,
            "items": [{"key": cm.key, "path": cm.key}],
            "optional": True,
        },
    }
    return args, [mount], [volume]


def build_loadtest_job(
    llm: LLM,
    version: str,
    target_url: str,
    baseline_url: str | None,
    config: OperatorConfig,
) -> dict[str, Any]:
    lt = llm.spec.rollout.load_test
    name = loadtest_job_name(llm.name, version)
    labels = child_labels(llm.name, Component.LOADTEST, version)
    slo = lt.slo
    if baseline_url is None:
        # A relative objective needs production to compare with; the first release has none.
        slo = slo.model_copy(update={"max_latency_regression_percent": None})
    args = [
        "loadtest",
        "--target",
        target_url,
        "--users",
        str(lt.users),
        "--spawn-rate",
        str(lt.spawn_rate),
        "--duration",
        lt.duration,
        "--warmup",
        lt.warmup,
        "--max-tokens",
        str(lt.max_tokens),
        "--model",
        llm.name,
        "--prompts",
        f"{PROMPTS_DIR}/prompts.jsonl",
        "--slo",
        slo_argument(slo),
        "--out",
        REPORT_DIR,
        "--registered-model",
        llm.spec.model.registered_model,
        "--model-version",
        version,
    ]
    if lt.workers:
        args += ["--workers", str(lt.workers)]
    if baseline_url:
        args += ["--baseline", baseline_url]
    eval_args, eval_mounts, eval_volumes = _evaluation(
        llm.spec.rollout.evaluation, baseline=baseline_url is not None
    )
    args += eval_args
    uri = tracking_uri(llm, config)
    if uri:
        args += ["--tracking-uri", uri]
    api_key = api_key_volume(llm)
    if api_key:
        args += ["--api-key-file", f"{API_KEY_DIR}/api-key"]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "loadtest",
                "image": config.image,
                "command": [*config.command, *args],
                "env": common_env(llm, config),
                "envFrom": credentials(llm, "loadtest"),
                "volumeMounts": [
                    {"name": "prompts", "mountPath": PROMPTS_DIR, "readOnly": True},
                    {"name": "report", "mountPath": REPORT_DIR},
                    *([api_key_mount()] if api_key else []),
                    *eval_mounts,
                ],
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
        "volumes": [
            {"name": "prompts", "configMap": {"name": prompts_configmap_name(llm.name)}},
            {"name": "report", "emptyDir": {"sizeLimit": "1Gi"}},
            *api_key,
            *eval_volumes,
        ],
    }
    harden(pod_spec, config, tmp_limit=config.tmp_size_limit)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(llm, name, labels),
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }
