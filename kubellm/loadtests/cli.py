"""``kubellm loadtest``: the load-test gate as a command (the load-test Job's container).

Exit codes are the contract with the operator: 0 the release passed every objective,
1 it failed at least one (or the run could not be judged: fail closed), 2 the load test
could not be run (bad input, target unreachable at start, results not recordable).
Every outcome, error included, leaves ``verdict.json`` in ``--out`` and a summary in the
termination message; "pass" is written only when everything was measured and met.

A target that is dead from the start is an error (exit 2): nothing about the release was
measured. A target that dies during the run is a fail (exit 1): its errors are measured.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubellm.loadtests.quality import QualityReport, Scores
    from kubellm.loadtests.settings import LoadTestSettings

__all__ = ["register", "run"]

EXIT_PASS, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
DEFAULT_OUT = "loadtest-results"


def _flag(
    parser: argparse.ArgumentParser, flag: str, default: str | None, help: str, **kw: Any
) -> None:
    from kubellm.loadtests.settings import env_name

    env = env_name(flag)
    parser.add_argument(flag, default=os.environ.get(env, default), help=f"{help} [${env}]", **kw)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "loadtest",
        help="load-test an OpenAI-compatible server with Locust and judge it against SLOs",
        description=(
            "Run Locust headless against --target for --duration (after --warmup, which is "
            "not measured), judge the figures against --slo and write verdict.json, Locust's "
            "HTML report and CSVs to --out. Exit 0 pass, 1 fail, 2 error. Every flag can "
            "also be set as KUBELLM_LOADTEST_<FLAG>, e.g. KUBELLM_LOADTEST_SPAWN_RATE."
        ),
    )
    _flag(parser, "--target", None, "base URL of the server under test", metavar="URL")
    _flag(parser, "--users", "10", "concurrent users (requests in flight)", metavar="N")
    _flag(parser, "--spawn-rate", "10", "users started per second", metavar="R")
    _flag(parser, "--duration", "60s", "measured duration, e.g. 60s, 2m, 1m30s")
    _flag(parser, "--warmup", "0s", "unmeasured warm-up before the window, e.g. 10s")
    _flag(parser, "--workers", "1", "Locust processes; >1 uses master/worker mode", metavar="K")
    _flag(
        parser,
        "--slo",
        None,
        "objectives: p95LatencyMs=,maxErrorRate=,minRequestsPerSecond=,"
        "p95TimeToFirstTokenMs=,minTokensPerSecond=,maxLatencyRegressionPercent=",
    )
    _flag(parser, "--baseline", None, "production URL loaded in the same window", metavar="URL")
    _flag(parser, "--out", DEFAULT_OUT, "folder for verdict.json, report.html, CSVs")
    _flag(parser, "--prompts", None, "prompt file: one per line, or JSONL (prompt/text)")
    _flag(parser, "--chat-ratio", "0.5", "share of chat (vs completion) requests")
    _flag(parser, "--stream-ratio", "0.5", "share of streamed requests")
    _flag(parser, "--max-tokens", "32", "max_tokens of each request", metavar="N")
    _flag(parser, "--model", None, "model name to request (default: first of /v1/models)")
    _flag(parser, "--api-key-file", None, "file holding a bearer token", metavar="F")
    _flag(parser, "--tracking-uri", None, "MLflow tracking URI: log a run with the figures")
    _flag(parser, "--experiment", "kubellm-loadtests", "MLflow experiment name")
    _flag(parser, "--registered-model", None, "registered model of the version under test")
    _flag(parser, "--model-version", None, "version under test: gets kubellm.loadtest.* tags")
    _flag(
        parser,
        "--evaluation",
        None,
        "quality gate: evaluation set (JSON lines or YAML list of prompt/reference), a path "
        "or s3:// URI; both releases are scored on it",
        metavar="URI",
    )
    _flag(
        parser,
        "--quality",
        None,
        "quality objectives: maxPerplexityRegressionPercent=,minMatchRate=,match=exact|contains",
    )
    _flag(parser, "--eval-max-prompts", "100", "evaluation prompts used at most", metavar="N")
    _flag(parser, "--eval-max-tokens", "32", "max_tokens of a reference answer", metavar="N")
    _flag(parser, "--progress-every", "5s", "interval of progress lines")
    _flag(parser, "--connect-timeout", "10s", "how long to wait for the target to answer")
    _flag(parser, "--request-timeout", "60s", "timeout of one request")
    parser.set_defaults(handler=run)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM (pod deletion) unwind like Ctrl-C, so Locust processes are stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _emit(line: str) -> None:
    print(line, flush=True)


def _finish_error(out_dir: Path, message: str, target: str | None) -> int:
    from kubellm.loadtests.report import error_report, write_report

    print(f"kubellm loadtest: error: {message}", file=sys.stderr, flush=True)
    try:
        write_report(out_dir, error_report(message, target=target))
    except OSError as exc:
        print(f"kubellm loadtest: cannot write {out_dir}: {exc}", file=sys.stderr)
    return EXIT_ERROR


def run(args: argparse.Namespace) -> int:
    from kubellm.api.vocabulary import LoadTestVerdict
    from kubellm.loadtests.plan import LocustPlan
    from kubellm.loadtests.probe import probe_target
    from kubellm.loadtests.report import build_report, log_to_mlflow, write_report
    from kubellm.loadtests.runner import RunSpec, format_progress, run_all
    from kubellm.loadtests.settings import settings_from_args
    from kubellm.loadtests.slo import InputError, format_duration
    from kubellm.loadtests.verdict import judge

    out_dir = Path(args.out or DEFAULT_OUT)
    try:
        s = settings_from_args(args)
    except InputError as exc:
        return _finish_error(out_dir, str(exc), args.target)
    started = time.time()
    if s.tracking_uri:
        from kubellm.loadtests.report import check_tracking
        from kubellm.registry import RegistryError

        try:
            check_tracking(s)
        except RegistryError as exc:
            return _finish_error(out_dir, f"--tracking-uri: {exc}", s.target)

    targets = {"candidate": s.target, **({"baseline": s.baseline} if s.baseline else {})}
    model = s.model
    for label, url in targets.items():
        probe = probe_target(url, timeout_s=s.connect_timeout_s, api_key=s.api_key)
        if not probe.reachable:
            flag = "--target" if label == "candidate" else "--baseline"
            return _finish_error(out_dir, f"{flag} unreachable: {probe.detail}", s.target)
        if model is None and label == "candidate" and probe.models:
            model = probe.models[0]
    model = model or "default"

    _emit(
        f"kubellm loadtest: {s.users} users (+{s.spawn_rate:g}/s) on {s.target}"
        + (f" and baseline {s.baseline}" if s.baseline else "")
        + f" for {format_duration(s.duration_s)} after {format_duration(s.warmup_s)} warm-up"
        + (f", {s.workers} Locust workers" if s.workers > 1 else "")
        + f"; model {model!r}; SLO {s.objectives.to_dict()}"
    )
    specs = []
    for label, url in targets.items():
        folder = out_dir if label == "candidate" else out_dir / label
        plan = LocustPlan(
            label=label,
            model=model,
            figures_path=str((folder / "figures.json").resolve()),
            warmup_s=s.warmup_s,
            duration_s=s.duration_s,
            prompts_file=str(s.prompts_file) if s.prompts_file else None,
            chat_ratio=s.chat_ratio,
            stream_ratio=s.stream_ratio,
            max_tokens=s.max_tokens,
            progress_interval_s=s.progress_interval_s,
            request_timeout_s=s.request_timeout_s,
        )
        specs.append(
            RunSpec(plan, url, folder.resolve(), s.users, s.spawn_rate, s.workers, s.api_key)
        )

    try:
        with _sigterm_as_interrupt():
            quality = _score_quality(s, model, targets) if s.evaluation_items else None
            results = run_all(specs, lambda p: _emit(format_progress(p)))
    except KeyboardInterrupt:
        return _finish_error(out_dir, "interrupted before the load test finished", s.target)
    candidate, baseline = results["candidate"], results.get("baseline")
    verdict = judge(candidate, s.objectives, baseline)
    if quality is not None:
        verdict = quality.add_to(verdict)
    doc = build_report(
        s, model, verdict, candidate, baseline, started_at=started, finished_at=time.time()
    )
    if quality is not None:
        doc["quality"] = quality.to_dict()
    write_report(out_dir, doc)
    code = EXIT_PASS if verdict.passed else EXIT_FAIL

    if s.tracking_uri:
        try:
            run_id = log_to_mlflow(s, doc, out_dir)
            _emit(f"kubellm loadtest: MLflow run {run_id}")
        except Exception as exc:  # the evidence must be recorded: fail closed as an error
            doc["objectivesVerdict"] = doc["verdict"]
            doc["verdict"], doc["passed"] = LoadTestVerdict.ERROR, False
            doc["reasons"].append(f"results could not be recorded in MLflow: {exc}")
            code = EXIT_ERROR
        doc["wallSeconds"] = round(time.time() - started, 3)
        write_report(out_dir, doc)

    _print_summary(doc, out_dir)
    return code


def _score_quality(s: LoadTestSettings, model: str, targets: dict[str, str]) -> QualityReport:
    """Score each release on the evaluation set (before the load, so that it does not
    disturb the figures); return the judged ``QualityReport``."""
    from kubellm.loadtests.quality import QualityReport, score_release

    scores: dict[str, Scores] = {}
    for label, url in targets.items():
        scores[label] = score_release(
            url,
            model,
            list(s.evaluation_items),
            match=s.quality.match,
            max_tokens=s.eval_max_tokens,
            api_key=s.api_key,
            timeout_s=s.request_timeout_s,
        )
        _emit(f"kubellm loadtest: quality of {label}: {scores[label].to_dict()}")
    return QualityReport(s.quality, scores["candidate"], scores.get("baseline"))


def _print_summary(doc: dict[str, Any], out_dir: Path) -> None:
    fig = doc.get("figures") or {}

    def show(key: str, unit: str = "") -> str:
        value = fig.get(key)
        return "-" if value is None else f"{value:g}{unit}"

    _emit(
        f"kubellm loadtest: verdict {doc['verdict'].upper()}: "
        f"requests={show('requests')} rps={show('requestsPerSecond')} "
        f"p50={show('p50LatencyMs', 'ms')} p95={show('p95LatencyMs', 'ms')} "
        f"p99={show('p99LatencyMs', 'ms')} ttft_p95={show('p95TimeToFirstTokenMs', 'ms')} "
        f"tokens/s={show('tokensPerSecond')} errors={show('errorRate')}"
    )
    for reason in doc.get("reasons", []):
        _emit(f"  - {reason}")
    if fig.get("loadGeneratorSaturated"):
        _emit(
            "kubellm loadtest: warning: a Locust process ran above 90% CPU; latencies include "
            "client-side queueing (use more --workers)"
        )
    _emit(f"kubellm loadtest: report in {out_dir / 'verdict.json'}, {out_dir / 'report.html'}")
