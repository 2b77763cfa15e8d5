"""``kubellm serve`` and ``kubellm fetch-model``.

Every flag can also come from the environment (``--max-batch-size`` from
``KUBELLM_MAX_BATCH_SIZE`` and so on), because the operator configures serving pods
through env vars rendered from the LLM's spec; a flag on the command line wins. Heavy
imports (torch, transformers, mlflow) happen inside the handlers, so ``kubellm --help``
stays fast.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["cpu_budget", "register", "run_fetch_model", "run_serve"]

log = logging.getLogger(__name__)


def _env(flag: str, default: Any = None) -> Any:
    return os.environ.get("KUBELLM_" + flag.lstrip("-").replace("-", "_").upper(), default)


def _add(parser: argparse.ArgumentParser, flag: str, help: str, **kw: Any) -> None:
    env_name = "KUBELLM_" + flag.lstrip("-").replace("-", "_").upper()
    default = _env(flag, kw.pop("default", None))
    shown = f" (env {env_name}" + (f"; default {default}" if default is not None else "") + ")"
    parser.add_argument(flag, default=default, help=help + shown, **kw)


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="serve a model over an OpenAI-compatible HTTP API",
        description=(
            "Serve a causal LM with continuous batching: /v1/completions, "
            "/v1/chat/completions, /v1/models, /healthz, /readyz, /metrics."
        ),
    )
    _add(serve, "--model", "models:/NAME/VERSION, models:/NAME@ALIAS or a local directory")
    _add(serve, "--host", "address to bind", default="0.0.0.0")
    _add(serve, "--port", "port to bind", type=int, default=8000)
    _add(serve, "--served-model-name", "model name clients send (default: from --model)")
    _add(serve, "--max-batch-size", "sequences decoded together", type=int, default=32)
    _add(serve, "--max-queue", "waiting requests before 429", type=int, default=256)
    _add(
        serve,
        "--max-step-tokens",
        "tokens one engine step computes (decoding rows + prompt chunks)",
        type=int,
        default=256,
    )
    _add(serve, "--max-new-tokens", "largest max_tokens accepted", type=int, default=512)
    _add(serve, "--max-prompt-tokens", "longest prompt accepted, in tokens", type=int)
    _add(
        serve,
        "--max-body-bytes",
        "largest request body (default: 32 bytes per allowed prompt token + 64 KiB)",
        type=int,
    )
    _add(
        serve,
        "--request-timeout",
        "seconds before a non-streamed request is cancelled (504)",
        type=float,
        default=600.0,
    )
    _add(serve, "--api-key-file", "file holding the API key (else env KUBELLM_API_KEY)")
    _add(serve, "--chat-template", "Jinja chat template, inline or a file path")
    _add(serve, "--device", "torch device", default="cpu")
    _add(
        serve,
        "--threads",
        "CPU threads for the model (default: the CPUs this container may use: its CPU "
        "affinity, capped by its cgroup CPU limit)",
        type=int,
    )
    _add(
        serve,
        "--dtype",
        "weights dtype: auto (float32 on CPU, checkpoint's on GPU), float32, bfloat16, float16",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
    )
    _add(serve, "--tracking-uri", "MLflow tracking URI for models:/ URIs")
    _add(serve, "--download-dir", "where a models:/ URI is downloaded (default: a temp dir)")
    _add(
        serve,
        "--shutdown-grace",
        "seconds to finish in-flight work on SIGTERM",
        type=float,
        default=30.0,
    )
    serve.set_defaults(handler=run_serve)

    fetch = subparsers.add_parser(
        "fetch-model",
        help="download a registry model into a directory",
        description=(
            "Download models:/NAME/VERSION or models:/NAME@ALIAS into DIR (init container "
            "of serving pods). Prints the folder that holds config.json. Exit 3: not found; "
            "4: registry unreachable; 5: no space left on the local disk."
        ),
    )
    fetch.add_argument("uri", help="models:/NAME/VERSION or models:/NAME@ALIAS")
    fetch.add_argument("dir", type=Path, help="destination directory")
    _add(fetch, "--tracking-uri", "MLflow tracking URI (else MLFLOW_TRACKING_URI)")
    fetch.set_defaults(handler=run_fetch_model)


def _read_chat_template(value: str | None) -> str | None:
    if not value:
        return None
    path = Path(value)
    if "{" not in value and path.is_file():
        return path.read_text()
    return value


def _read_api_key(path: str | None) -> str | None:
    if path:
        key = Path(path).read_text().strip()
        if not key:
            raise ValueError(f"API key file {path} is empty")
        return key
    return os.environ.get("KUBELLM_API_KEY") or None


def cpu_budget(cpu_max: str | None, available: int) -> int:
    """Threads worth running: ``available`` CPUs, capped by a cgroup v2 ``cpu.max`` quota.

    A pod with a CPU limit of 2 on a 64-core node sees 64 CPUs but gets 2 CPUs' worth of
    time: 64 threads would spend it waiting for each other at every parallel region.
    """
    budget = max(1, available)
    if cpu_max:
        quota, _, period = cpu_max.strip().partition(" ")
        if quota.isdigit() and period.isdigit() and int(period) > 0:
            budget = min(budget, max(1, math.ceil(int(quota) / int(period))))
    return budget


def _container_cpus() -> int:
    try:
        cpu_max: str | None = Path("/sys/fs/cgroup/cpu.max").read_text()
    except OSError:
        cpu_max = None
    return cpu_budget(cpu_max, len(os.sched_getaffinity(0)))


def _set_threading(threads: int) -> None:
    """Before torch loads: its OpenMP reads these once.

    Threads that wait at the end of a parallel region sleep instead of spinning
    (``OMP_WAIT_POLICY=PASSIVE``): on shared or CPU-limited cores a spinning thread burns
    the time its preempted partner needs to finish the region, and decoding, which runs
    hundreds of short regions per step, loses most to it. Either variable set by the user wins.
    """
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def run_serve(args: argparse.Namespace) -> int:
    if args.device == "cpu" or args.threads:
        _set_threading(int(args.threads) if args.threads else _container_cpus())

    from kubellm.serving.lifecycle import ServerSettings, ServerState
    from kubellm.serving.server import serve

    if not args.model:
        print("kubellm serve: --model (or KUBELLM_MODEL) is required", file=sys.stderr)
        return 2
    try:
        api_key = _read_api_key(args.api_key_file)
        chat_template = _read_chat_template(args.chat_template)
    except (OSError, ValueError) as exc:
        print(f"kubellm serve: {exc}", file=sys.stderr)
        return 2
    max_prompt = int(args.max_prompt_tokens) if args.max_prompt_tokens else None
    settings = ServerSettings(
        model=args.model,
        served_model_name=args.served_model_name,
        max_batch_size=int(args.max_batch_size),
        max_queue=int(args.max_queue),
        max_step_tokens=int(args.max_step_tokens),
        max_new_tokens=int(args.max_new_tokens),
        max_prompt_tokens=max_prompt,
        api_key=api_key,
        chat_template=chat_template,
        device=args.device,
        dtype=args.dtype,
        tracking_uri=args.tracking_uri,
        download_dir=Path(args.download_dir) if args.download_dir else None,
        shutdown_grace=float(args.shutdown_grace),
        max_body_bytes=int(args.max_body_bytes) if args.max_body_bytes else None,
        request_timeout=float(args.request_timeout),
    )
    log.info("serving %s on %s:%s", settings.model, args.host, args.port)
    return serve(ServerState(settings), args.host, int(args.port))


def run_fetch_model(args: argparse.Namespace) -> int:
    from kubellm.registry import DiskFull, ModelNotFound, RegistryError, RegistryUnavailable
    from kubellm.serving.loading import fetch_model
    from kubellm.termination import write_termination_message

    try:
        model_dir = fetch_model(args.uri, args.dir, args.tracking_uri)
    except ValueError as exc:
        print(f"kubellm fetch-model: {exc}", file=sys.stderr)
        write_termination_message({"component": "fetch-model", "error": str(exc)})
        return 2
    except ModelNotFound as exc:
        print(f"kubellm fetch-model: not found: {exc}", file=sys.stderr)
        write_termination_message({"component": "fetch-model", "error": str(exc)})
        return 3
    except DiskFull as exc:
        print(f"kubellm fetch-model: {exc}", file=sys.stderr)
        write_termination_message({"component": "fetch-model", "error": str(exc)})
        return 5
    except (RegistryUnavailable, RegistryError) as exc:
        print(f"kubellm fetch-model: registry error: {exc}", file=sys.stderr)
        write_termination_message({"component": "fetch-model", "error": str(exc)})
        return 4
    print(model_dir)
    return 0
