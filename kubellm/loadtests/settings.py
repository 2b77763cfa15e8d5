"""The validated settings of one load test, built from the command line and the environment.

Every flag of ``kubellm loadtest`` can also come from ``KUBELLM_LOADTEST_<FLAG>`` (the
operator's Job sets some of them that way). All values arrive as strings and are checked
here, in one place, so that every piece of bad input (a malformed SLO, zero users, a
duration that is not one, an objective that the configured mix cannot measure) becomes an
``InputError`` naming the flag, which the command turns into exit code 2 and a verdict file
that says "error".
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from kubellm.loadtests.evaluation import MAX_EVALUATION_ITEMS, EvalItem, load_evaluation
from kubellm.loadtests.prompts import load_prompts
from kubellm.loadtests.quality import QualityObjectives, parse_quality
from kubellm.loadtests.slo import InputError, Objectives, parse_duration, parse_slo

__all__ = ["ENV_PREFIX", "LoadTestSettings", "env_name", "normalise_url", "settings_from_args"]

ENV_PREFIX = "KUBELLM_LOADTEST_"


def env_name(flag: str) -> str:
    """``--spawn-rate`` -> ``KUBELLM_LOADTEST_SPAWN_RATE``."""
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


@dataclass(frozen=True)
class LoadTestSettings:
    target: str
    users: int
    spawn_rate: float
    duration_s: float
    warmup_s: float
    workers: int
    objectives: Objectives
    slo_text: str
    out_dir: Path
    baseline: str | None = None
    prompts_file: Path | None = None
    chat_ratio: float = 0.5
    stream_ratio: float = 0.5
    max_tokens: int = 32
    model: str | None = None
    api_key: str | None = None
    tracking_uri: str | None = None
    experiment: str = "kubellm-loadtests"
    registered_model: str | None = None
    model_version: str | None = None
    progress_interval_s: float = 5.0
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 60.0
    evaluation: str | None = None  # the evaluation set's path or URI, as given
    evaluation_items: tuple[EvalItem, ...] = ()
    quality: QualityObjectives = field(default_factory=QualityObjectives)
    eval_max_tokens: int = 32


def normalise_url(raw: str | None, flag: str) -> str:
    """``http://host:port[/prefix]`` without a trailing ``/`` or ``/v1`` (paths add ``/v1``)."""
    if raw is None or not raw.strip():
        raise InputError(f"{flag} is required (or set {env_name(flag)})")
    text = raw.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"{flag}: {raw!r} is not an http(s) URL such as http://my-llm:8000")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise InputError(f"{flag}: {raw!r} has an invalid port") from None
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[: -len("/v1")]
    return f"{parts.scheme}://{parts.netloc}{path}"


def _int(raw: str | None, flag: str, minimum: int) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InputError(f"{flag}: {raw!r} is not a whole number") from None
    if value < minimum:
        raise InputError(f"{flag}: {value} is too small; it must be at least {minimum}")
    return value


def _float(raw: str | None, flag: str, low: float, high: float = math.inf) -> float:
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise InputError(f"{flag}: {raw!r} is not a number") from None
    if not math.isfinite(value) or value < low or value > high:
        bound = f"between {low:g} and {high:g}" if math.isfinite(high) else f">= {low:g}"
        raise InputError(f"{flag}: {raw} must be {bound}")
    return value


def _read_secret(path: str, flag: str) -> str:
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"{flag}: cannot read {path!r}: {exc.strerror or exc}") from None
    if not value:
        raise InputError(f"{flag}: {path!r} is empty")
    return value


def settings_from_args(args: argparse.Namespace) -> LoadTestSettings:
    """Check every input; raise ``InputError`` naming the first bad one."""
    target = normalise_url(args.target, "--target")
    baseline = normalise_url(args.baseline, "--baseline") if args.baseline else None
    users = _int(args.users, "--users", 1)
    spawn_rate = _float(args.spawn_rate, "--spawn-rate", 0.0)
    if spawn_rate <= 0:
        raise InputError(f"--spawn-rate: {args.spawn_rate} must be greater than 0 users/s")
    duration_s = parse_duration(args.duration, source="--duration")
    warmup_s = parse_duration(args.warmup, source="--warmup", allow_zero=True)
    workers = _int(args.workers, "--workers", 1)
    if args.slo is None:
        raise InputError(f"--slo is required (or set {env_name('--slo')})")
    objectives = parse_slo(args.slo, source="--slo")
    chat_ratio = _float(args.chat_ratio, "--chat-ratio", 0.0, 1.0)
    stream_ratio = _float(args.stream_ratio, "--stream-ratio", 0.0, 1.0)
    max_tokens = _int(args.max_tokens, "--max-tokens", 1)
    if objectives.max_latency_regression_percent is not None and baseline is None:
        raise InputError(
            "--slo: maxLatencyRegressionPercent compares with production and needs --baseline URL"
        )
    if objectives.p95_time_to_first_token_ms is not None and stream_ratio == 0:
        raise InputError(
            "--slo: p95TimeToFirstTokenMs is measured on streamed requests, but --stream-ratio is 0"
        )
    prompts_file = Path(args.prompts) if args.prompts else None
    load_prompts(prompts_file)  # fail now, naming the file and line, not inside Locust
    evaluation, items, quality, eval_max_tokens = _evaluation(args, baseline)
    api_key = _read_secret(args.api_key_file, "--api-key-file") if args.api_key_file else None
    if args.model_version and not (args.registered_model and args.tracking_uri):
        raise InputError("--model-version needs --registered-model and --tracking-uri")
    if args.registered_model and not args.model_version:
        raise InputError("--registered-model needs --model-version (the version under test)")
    return LoadTestSettings(
        target=target,
        baseline=baseline,
        users=users,
        spawn_rate=spawn_rate,
        duration_s=duration_s,
        warmup_s=warmup_s,
        workers=workers,
        objectives=objectives,
        slo_text=args.slo,
        out_dir=Path(args.out),
        prompts_file=prompts_file.resolve() if prompts_file else None,
        chat_ratio=chat_ratio,
        stream_ratio=stream_ratio,
        max_tokens=max_tokens,
        model=args.model or None,
        api_key=api_key,
        tracking_uri=args.tracking_uri or None,
        experiment=args.experiment,
        registered_model=args.registered_model or None,
        model_version=str(args.model_version) if args.model_version else None,
        progress_interval_s=parse_duration(args.progress_every, source="--progress-every"),
        connect_timeout_s=parse_duration(
            args.connect_timeout, source="--connect-timeout", allow_zero=True
        ),
        request_timeout_s=parse_duration(args.request_timeout, source="--request-timeout"),
        evaluation=evaluation,
        evaluation_items=items,
        quality=quality,
        eval_max_tokens=eval_max_tokens,
    )


def _evaluation(
    args: argparse.Namespace, baseline: str | None
) -> tuple[str | None, tuple[EvalItem, ...], QualityObjectives, int]:
    """The quality gate's inputs: the set (read now, so bad input is an error before any
    load), its objectives and the tokens of each reference answer."""
    quality = parse_quality(args.quality or "")
    max_tokens = _int(args.eval_max_tokens, "--eval-max-tokens", 1)
    limit = _int(args.eval_max_prompts, "--eval-max-prompts", 1)
    if limit > MAX_EVALUATION_ITEMS:
        raise InputError(f"--eval-max-prompts: at most {MAX_EVALUATION_ITEMS}")
    if not args.evaluation:
        if args.quality:
            raise InputError("--quality needs --evaluation (the set to score releases on)")
        return None, (), quality, max_tokens
    if quality.max_perplexity_regression_percent is not None and baseline is None:
        raise InputError(
            "--quality: maxPerplexityRegressionPercent compares with production and needs "
            "--baseline URL"
        )
    items = tuple(load_evaluation(args.evaluation, limit=limit))
    if quality.min_match_rate is not None and not any(i.reference for i in items):
        raise InputError(
            f"--quality: minMatchRate needs reference answers, and {args.evaluation} has none"
        )
    return args.evaluation, items, quality, max_tokens
