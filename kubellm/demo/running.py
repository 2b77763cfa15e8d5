"""`kubellm demo` itself: its arguments, the workdir it takes over, the run, the cleanup.

The services (MLflow, localkube) start inside a lifetime guard whose watchdog stops every
process the demo started, even when the demo is killed; the next demo in the same workdir
stops what a dead one left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubellm.api.identity import GROUP, PLURAL
from kubellm.demo.chart import demo_manifest, manifest_name, render_chart
from kubellm.demo.common import EXAMPLE, NAMESPACE, DemoFailure, kubectl, share_root
from kubellm.demo.progress import wait_rollout, watch
from kubellm.demo.summary import print_summary
from kubellm.devtools import LocalkubeMissing, require_localkube
from kubellm.podhealth import NOT_READY_BOUND

__all__ = [
    "PREVIOUS",
    "STATE",
    "register",
    "run_demo",
]

STATE = "demo.json"
PREVIOUS = "previous-run"


@contextlib.contextmanager
def _services(workdir: Path, control_plane: str) -> Iterator[tuple[str, Any]]:
    from localkube.testing.localkube import local_cluster
    from localkube.testing.mlflow import mlflow_server

    with (
        mlflow_server(workdir / "mlflow", webhooks=True) as mlflow_url,
        local_cluster(
            workdir / "localkube", time_scale=1.0, control_plane=control_plane
        ) as cluster,
    ):
        yield mlflow_url, cluster


def _take_over(workdir: Path, console: Any) -> None:
    """Refuse a workdir a live demo uses; stop a dead one's leftovers; start clean."""
    from localkube import lifetime
    from localkube.instances import read_state

    try:
        state = json.loads((workdir / STATE).read_text())
    except (OSError, ValueError):
        state = None
    if state is not None:
        pid, tag = int(state.get("pid") or 0), str(state.get("tag") or "")
        if pid and lifetime.is_running(pid, state.get("processStart")):
            raise DemoFailure(
                f"a demo is already running in {workdir} (pid {pid}); stop it first, "
                "or give this one another --workdir"
            )
        stopped = lifetime.sweep(tag) if tag else []
        left = f"stopped {len(stopped)} leftover process(es)" if stopped else "nothing was left"
        console.print(f"the demo that ran in {workdir} (pid {pid}) died without stopping; {left}")
    cluster = read_state(workdir / "localkube")
    if cluster is not None and cluster.alive():
        raise DemoFailure(
            f"a localkube (pid {cluster.pid}) still runs in {workdir / 'localkube'}; stop it "
            f"with `kubellm localkube down --workdir {workdir / 'localkube'}`"
        )
    previous = workdir / PREVIOUS
    olds = [workdir / n for n in ("mlflow", "localkube") if (workdir / n).exists()]
    if olds:
        shutil.rmtree(previous, ignore_errors=True)
        previous.mkdir()
        for old in olds:
            old.rename(previous / old.name)
        console.print(f"[dim]starting from a clean slate (the last run's files: {previous})[/]")


def _run(args: argparse.Namespace, console: Any, workdir: Path, started: float) -> int:
    from kubellm.tools.binaries import ensure

    tools = ensure()
    with contextlib.ExitStack() as stack:
        mlflow_url, cluster = stack.enter_context(_services(workdir, args.control_plane))
        api = (
            f"kube-apiserver {cluster.version}" if cluster.control_plane == "real" else "localkube"
        )
        console.print(f"{api} API: {cluster.url}", soft_wrap=True)
        console.print(f"export KUBECONFIG={cluster.kubeconfig_path}", soft_wrap=True)
        console.print(f"MLflow:        {mlflow_url}")
        kubectl(cluster, "create", "namespace", NAMESPACE, check=False)
        rendered = render_chart(
            tools["helm"],
            mlflow_url,
            Path(cluster.kubeconfig_path),
            args.webhook_port,
            # a real cluster gives the operator pod its ServiceAccount's token: the chart's
            # RBAC then applies to it; localkube's pods get the admin kubeconfig
            pass_kubeconfig=cluster.control_plane != "real",
            chart=args.chart,
        )
        console.print("installing the chart (helm template | kubectl apply) ...")
        kubectl(cluster, "apply", "-f", "-", stdin=rendered)
        kubectl(
            cluster, "wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s"
        )
        wait_rollout(cluster, console, 180.0, args.not_ready_bound)
        console.print(f"applying {EXAMPLE} ...")
        manifest = demo_manifest(share_root() / EXAMPLE)
        name = manifest_name(manifest)
        kubectl(cluster, "apply", "-f", "-", stdin=manifest)
        status = watch(cluster, name, args.timeout, console, args.not_ready_bound)
        print_summary(console, cluster, status, mlflow_url, time.monotonic() - started, name)
        if args.once:
            return 0
        console.print("\n[dim]running; Ctrl-C stops every process the demo started[/]")
        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    console.print("stopped.")
    return 0


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; every failure ends in one sentence (the traceback goes to a file)."""
    try:
        require_localkube("demo")
    except LocalkubeMissing as exc:
        print(exc, file=sys.stderr)
        return 1
    from rich.console import Console

    from localkube import lifetime

    console = Console()
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    console.print(f"[bold]kubellm demo[/] in {workdir}")
    signal.signal(signal.SIGTERM, _interrupt)  # a stop request cleans up like Ctrl-C
    guard: lifetime.Guard | None = None
    try:
        _take_over(workdir, console)
        guard = lifetime.Guard("demo")
        os.environ[lifetime.OWNERS_ENV] = guard.env()[lifetime.OWNERS_ENV]
        state = {"pid": os.getpid(), "processStart": lifetime.process_start(os.getpid())}
        (workdir / STATE).write_text(json.dumps({**state, "tag": guard.tag}))
        return _run(args, console, workdir, started)
    except KeyboardInterrupt:
        console.print("stopped before a promotion.")
        return 130
    except DemoFailure as exc:
        console.print(f"\n[bold red]demo failed:[/] {exc}")
        return 1
    except Exception as exc:
        log_file = workdir / "demo-error.log"
        log_file.write_text(traceback.format_exc())
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        if len(lines) > 1:
            console.print("\n".join(lines[1:]), markup=False, highlight=False)
        console.print(f"\n[bold red]demo failed:[/] {lines[0]} (details: {log_file})")
        return 1
    finally:
        if guard is not None:
            guard.close()
            with contextlib.suppress(OSError):
                (workdir / STATE).unlink()


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the whole lifecycle locally (localkube + MLflow + the Helm chart)",
        description=(
            "Start localkube and MLflow on loopback, install the chart, apply the tiny "
            "pre-training example and show its progress until the first promotion."
        ),
    )
    p.add_argument("--once", action="store_true", help="exit after the first promotion")
    p.add_argument(
        "--chart",
        type=Path,
        default=None,
        help="the Helm chart to install (default: the chart installed with kubellm, or the "
        "checkout's charts/kubellm)",
    )
    p.add_argument(
        "--control-plane",
        choices=("localkube", "real"),
        default="localkube",
        help="localkube's API emulator (default), or a real kube-apiserver & co. built by "
        "`make realkube`, with localkube's kubelet as the node",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("KUBELLM_DEMO_TIMEOUT", "600")),
        help="give up when the LLM's progress (phase, training step, candidate) has not "
        "changed for this many seconds (default 600)",
    )
    p.add_argument(
        "--workdir",
        default=".kubellm/demo",
        help="state and logs of the latest run (the one before is kept in previous-run/)",
    )
    p.add_argument(
        "--not-ready-bound",
        type=float,
        default=NOT_READY_BOUND,
        help="stop with a report when a pod is not Ready for this many seconds (default 60)",
    )
    p.add_argument(
        "--webhook-port",
        type=int,
        default=18080,
        help="operator webhook/metrics port on its pod IP (default 18080)",
    )
    p.set_defaults(handler=run_demo)
