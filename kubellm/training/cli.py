"""``kubellm train``: the training Job's entry point, and what it tells the operator.

Whatever happens, the process ends with a JSON summary in the termination-message file
(``$KUBELLM_TERMINATION_LOG``) and on the last line of stdout, and an exit code by category:

    0  trained and registered            3  the registry cannot be reached (retry later)
    1  training failed unexpectedly      4  quality gate missed: nothing registered
    2  bad input (spec must change)      5  no space left on the local disk
                                         143 terminated (SIGTERM)

On failure stderr's last line is one line naming the cause.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

from kubellm.redaction import redact
from kubellm.training.options import add_arguments

if TYPE_CHECKING:
    from kubellm.api.results import TrainingSummary

__all__ = ["EXIT_CODES", "register", "run"]

log = logging.getLogger(__name__)

EXIT_CODES = {
    "succeeded": 0,
    "training_failed": 1,
    "bad_input": 2,
    "registry_unavailable": 3,
    "quality_gate": 4,
    "disk_full": 5,
    "terminated": 143,
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="pre-train or fine-tune a causal LM and register it in MLflow",
        description=(
            "Pre-train (--method pretrain) or fine-tune (full, lora) a causal language model "
            "with transformers' Trainer (CPU, GPU, or DDP under torchrun), track the run in "
            "MLflow, register the model and set an alias. Every flag --foo-bar can also be "
            "set as the environment variable KUBELLM_FOO_BAR."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def error_kind(exc: BaseException) -> str:
    """The summary's ``errorKind`` (and so the exit code) of an exception."""
    from kubellm.registry import DiskFull, RegistryUnavailable
    from kubellm.training.errors import TrainError
    from kubellm.training.job import Terminated

    if isinstance(exc, Terminated | KeyboardInterrupt):
        return "terminated"
    if isinstance(exc, DiskFull) or _no_space_left(exc):
        return "disk_full"
    if isinstance(exc, RegistryUnavailable):
        return "registry_unavailable"
    if isinstance(exc, TrainError):
        return exc.kind
    return "training_failed"


def _no_space_left(exc: BaseException) -> bool:
    """ENOSPC anywhere in the chain (a checkpoint, a download, MLflow's temporary files)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        current = current.__cause__ or current.__context__
    return False


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def unreachable_message(tracking_uri: str, detail: str) -> str:
    """``MLflow registry at URI cannot be reached (Connection refused)``: the cause, not the
    client library's retry narrative."""
    found = re.search(r"\[Errno -?\d+\] ([^\"')]+)", detail) or re.search(
        r"(timed out|Max retries exceeded|Connection \w+)", detail
    )
    reason = found.group(1).strip() if found else detail[:200]
    return redact(f"MLflow registry at {tracking_uri} cannot be reached ({reason})")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    from kubellm.training.job import Terminated

    raise Terminated("terminated by SIGTERM")


def reports_for_pod(environ: dict[str, str] | os._Environ[str]) -> bool:
    """One process per pod writes the termination message: under torchrun every process of
    a pod shares the file, and only local rank 0 (global rank 0 on the first pod, which
    holds the run and version) may write it."""
    return int(environ.get("LOCAL_RANK", "0") or 0) == 0


def _report(summary: TrainingSummary) -> None:
    from kubellm.termination import write_termination_message

    if not reports_for_pod(os.environ):
        return
    text = write_termination_message(summary.dump())
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    from kubellm.api.results import TrainingOutcome, TrainingSummary
    from kubellm.training.errors import OptionsError
    from kubellm.training.options import resolve_options

    try:
        opts = resolve_options(vars(args), os.environ)
    except OptionsError as exc:
        print(f"kubellm train: error: {one_line(exc)}", file=sys.stderr, flush=True)
        _report(
            TrainingSummary(
                status=TrainingOutcome.FAILED, error=one_line(exc), error_kind="bad_input"
            )
        )
        return EXIT_CODES["bad_input"]

    context: dict[str, Any] = {}
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        from kubellm.training.job import run_job

        summary = run_job(opts, context=context)
    except BaseException as exc:
        kind = error_kind(exc)
        if kind == "training_failed":
            log.exception("training failed")
        message = one_line(exc)
        if kind == "registry_unavailable":
            message = unreachable_message(opts.tracking_uri, message)
        elif kind == "disk_full" and "disk full" not in message:
            message = f"no space left on the local disk (disk full): {message}"
        message = redact(message)
        print(f"kubellm train: error: {message}", file=sys.stderr, flush=True)
        _report(
            TrainingSummary(
                status=TrainingOutcome.FAILED,
                llm=opts.llm_name,
                method=opts.method,
                run_id=context.get("run_id"),
                error=message,
                error_kind=kind,
            )
        )
        return EXIT_CODES[kind]
    finally:
        signal.signal(signal.SIGTERM, previous)
    _report(summary)
    return 0
