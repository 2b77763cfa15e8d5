"""Where a verdict goes: verdict.json, the termination message, MLflow and the registry.

The operator reads the verdict from the Job's termination message (<= 4 KiB, so a summary),
people read ``verdict.json`` and Locust's HTML report in ``--out``, and the model registry
keeps the evidence on the model version itself (tags ``kubellm.loadtest.*``) with the full
report in an MLflow run, so that every version the gate promoted or refused shows why.
The documents are built by pure functions; writing them is the thin edge.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from kubellm.api.results import LoadTestSummary
from kubellm.api.timestamps import format_time
from kubellm.api.vocabulary import LoadTestVerdict
from kubellm.loadtests.settings import LoadTestSettings
from kubellm.loadtests.verdict import RunResult, Verdict
from kubellm.termination import write_termination_message

__all__ = [
    "VERSION_TAG_PREFIX",
    "build_report",
    "check_tracking",
    "error_report",
    "log_to_mlflow",
    "mlflow_metrics",
    "termination_summary",
    "version_tags",
    "write_report",
]

log = logging.getLogger(__name__)

VERSION_TAG_PREFIX = "kubellm.loadtest."
VERDICT_FILE = "verdict.json"
MAX_REASON_CHARS = 300
MAX_SUMMARY_REASONS = 8


def _settings_doc(s: LoadTestSettings) -> dict[str, Any]:
    return {
        "target": s.target,
        "baseline": s.baseline,
        "users": s.users,
        "spawnRate": s.spawn_rate,
        "durationSeconds": s.duration_s,
        "warmupSeconds": s.warmup_s,
        "workers": s.workers,
        "chatRatio": s.chat_ratio,
        "streamRatio": s.stream_ratio,
        "maxTokens": s.max_tokens,
        "prompts": str(s.prompts_file) if s.prompts_file else "built-in",
        "registeredModel": s.registered_model,
        "modelVersion": s.model_version,
        "evaluation": s.evaluation,
        "evaluationPrompts": len(s.evaluation_items),
    }


def build_report(
    settings: LoadTestSettings,
    model: str,
    verdict: Verdict,
    candidate: RunResult,
    baseline: RunResult | None,
    *,
    started_at: float,
    finished_at: float,
) -> dict[str, Any]:
    """The content of verdict.json for a run that was judged."""
    return {
        "verdict": verdict.status,
        "passed": verdict.passed,
        "reasons": list(verdict.reasons),
        "figures": candidate.figures.to_dict() if candidate.figures else None,
        "baselineFigures": baseline.figures.to_dict() if baseline and baseline.figures else None,
        "objectives": settings.objectives.to_dict(),
        "slo": settings.slo_text,
        "model": model,
        "settings": _settings_doc(settings),
        "startedAt": format_time(started_at),
        "finishedAt": format_time(finished_at),
        "wallSeconds": round(finished_at - started_at, 3),
    }


def error_report(message: str, *, target: str | None = None) -> dict[str, Any]:
    """The content of verdict.json when the load test could not be run at all."""
    return {
        "verdict": LoadTestVerdict.ERROR,
        "passed": False,
        "reasons": [message],
        "figures": None,
        "target": target,
        "finishedAt": format_time(time.time()),
    }


def termination_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """What the operator needs from the Job (a `LoadTestSummary`, as the JSON it reads),
    most important first: it must fit 4 KiB."""
    figures = doc.get("figures") or {}
    reasons = [r[:MAX_REASON_CHARS] for r in doc.get("reasons", [])[:MAX_SUMMARY_REASONS]]
    settings = doc.get("settings") or {}
    quality = doc.get("quality") or {}
    candidate, baseline = quality.get("candidate") or {}, quality.get("baseline") or {}
    summary = LoadTestSummary(
        verdict=doc["verdict"],
        p50_latency_ms=figures.get("p50LatencyMs"),
        p95_latency_ms=figures.get("p95LatencyMs"),
        p99_latency_ms=figures.get("p99LatencyMs"),
        requests_per_second=figures.get("requestsPerSecond"),
        tokens_per_second=figures.get("tokensPerSecond"),
        error_rate=figures.get("errorRate"),
        requests=figures.get("requests"),
        p95_time_to_first_token_ms=figures.get("p95TimeToFirstTokenMs"),
        reasons=reasons,
        model_version=settings.get("modelVersion") or None,
        registered_model=settings.get("registeredModel") or None,
        mlflow_run_id=doc.get("mlflowRunId") or None,
        perplexity=candidate.get("perplexity"),
        baseline_perplexity=baseline.get("perplexity"),
        perplexity_regression_percent=quality.get("perplexityRegressionPercent"),
        match_rate=candidate.get("matchRate"),
        baseline_match_rate=baseline.get("matchRate"),
    )
    return summary.dump()


def write_report(out_dir: Path, doc: dict[str, Any]) -> str:
    """Write verdict.json and the termination message; return the termination text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (VERDICT_FILE + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    tmp.replace(out_dir / VERDICT_FILE)
    return write_termination_message(termination_summary(doc))


def mlflow_metrics(doc: dict[str, Any]) -> dict[str, float]:
    """Figures as MLflow metrics (snake_case; missing figures are left out, not zeroed)."""
    names = {
        "requests": "requests",
        "failures": "failures",
        "errorRate": "error_rate",
        "requestsPerSecond": "requests_per_second",
        "tokensPerSecond": "tokens_per_second",
        "p50LatencyMs": "p50_latency_ms",
        "p95LatencyMs": "p95_latency_ms",
        "p99LatencyMs": "p99_latency_ms",
        "p95TimeToFirstTokenMs": "p95_time_to_first_token_ms",
        "p95InterTokenLatencyMs": "p95_inter_token_latency_ms",
        "durationSeconds": "duration_seconds",
    }
    out: dict[str, float] = {}
    for source, prefix in (("figures", ""), ("baselineFigures", "baseline_")):
        figures = doc.get(source) or {}
        for key, name in names.items():
            value = figures.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[prefix + name] = float(value)
    out.update(_quality_figures(doc))
    out["passed"] = 1.0 if doc.get("passed") else 0.0
    return out


def _quality_figures(doc: dict[str, Any]) -> dict[str, float]:
    """The quality gate's numbers by their MLflow metric / tag name (none: left out)."""
    quality = doc.get("quality") or {}
    found: dict[str, Any] = {
        "perplexity": (quality.get("candidate") or {}).get("perplexity"),
        "match_rate": (quality.get("candidate") or {}).get("matchRate"),
        "baseline_perplexity": (quality.get("baseline") or {}).get("perplexity"),
        "baseline_match_rate": (quality.get("baseline") or {}).get("matchRate"),
        "perplexity_regression_percent": quality.get("perplexityRegressionPercent"),
    }
    return {
        k: float(v)
        for k, v in found.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def version_tags(doc: dict[str, Any]) -> dict[str, str]:
    """The evidence written onto the model version in the registry."""
    figures = doc.get("figures") or {}

    def fmt(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    tags = {
        "verdict": doc["verdict"],
        "p95_ms": fmt(figures.get("p95LatencyMs")),
        "rps": fmt(figures.get("requestsPerSecond")),
        "tokens_per_s": fmt(figures.get("tokensPerSecond")),
        "error_rate": fmt(figures.get("errorRate")),
        "reasons": "; ".join(doc.get("reasons", []))[:4000],
    }
    tags.update({name: fmt(value) for name, value in _quality_figures(doc).items()})
    if doc.get("mlflowRunId"):
        tags["run_id"] = doc["mlflowRunId"]
    return {VERSION_TAG_PREFIX + k: v for k, v in tags.items()}


def _artifact_location(settings: LoadTestSettings) -> str | None:
    """Where a new experiment keeps artifacts: the tracking server decides, except for a
    ``sqlite:`` store, whose default (``./mlruns`` of the current directory) would scatter
    artifacts wherever the gate happened to run; those go beside the database file."""
    uri = settings.tracking_uri or ""
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///") :])
    if not db.is_absolute():
        db = Path.cwd() / db
    return (db.parent / "mlartifacts" / settings.experiment).resolve().as_uri()


def check_tracking(settings: LoadTestSettings) -> None:
    """Fail before any load is sent when the evidence could not be recorded afterwards:
    the tracking store does not answer, or the model version under test does not exist."""
    from kubellm.registry import Registry

    assert settings.tracking_uri is not None
    registry = Registry(settings.tracking_uri)
    if settings.registered_model and settings.model_version:
        registry.get_version(settings.registered_model, settings.model_version)
    else:
        registry.ping()


def log_to_mlflow(settings: LoadTestSettings, doc: dict[str, Any], out_dir: Path) -> str:
    """Record the run in MLflow (metrics, params, the out folder as artifacts) and tag the
    model version when one is given; return the run id. Errors propagate to the caller."""
    from kubellm.registry import Registry

    assert settings.tracking_uri is not None
    registry = Registry(settings.tracking_uri)
    client = registry.mlflow
    experiment = client.get_experiment_by_name(settings.experiment)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(
            settings.experiment, artifact_location=_artifact_location(settings)
        )
    )
    run_tags = {
        "mlflow.runName": f"loadtest-{settings.registered_model or 'target'}"
        + (f"-v{settings.model_version}" if settings.model_version else ""),
        "kubellm.component": "loadtest",
        f"{VERSION_TAG_PREFIX}verdict": doc["verdict"],
    }
    if settings.registered_model:
        run_tags["kubellm.registered_model"] = settings.registered_model
        run_tags["kubellm.model_version"] = str(settings.model_version)
    run = client.create_run(experiment_id, tags=run_tags)
    run_id: str = run.info.run_id
    from mlflow.entities import Metric, Param

    now_ms = int(time.time() * 1000)
    metrics = [Metric(k, v, now_ms, 0) for k, v in mlflow_metrics(doc).items()]
    params = [Param(k, str(v)[:500]) for k, v in (doc.get("settings") or {}).items()]
    params.append(Param("slo", settings.slo_text[:500]))
    if settings.evaluation:
        params.append(Param("quality", json.dumps(settings.quality.to_dict())[:500]))
    try:
        client.log_batch(run_id, metrics=metrics, params=params)
        doc["mlflowRunId"] = run_id
        (out_dir / VERDICT_FILE).write_text(json.dumps(doc, indent=2, default=str))
        client.log_artifacts(run_id, str(out_dir), artifact_path="loadtest")
        status = "FINISHED"
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status=status)
    if settings.registered_model and settings.model_version:
        registry.set_version_tags(
            settings.registered_model, settings.model_version, version_tags(doc)
        )
    return run_id
