"""`kubellm localkube up|down|status`: run a local cluster in the foreground and manage it.

`up` runs the API server and controllers until SIGINT/SIGTERM, writes a kubeconfig (with a
random bearer token, mode 0600) and prints `export KUBECONFIG=...`. It takes address blocks
for pods and Services that no other running instance uses, and records its state (pid, URL,
kubeconfig, workdir, blocks, start time) in the work directory and in a per-user registry,
so that `down --workdir` (from another shell) stops it and `status` lists every running
instance. Stopping kills every process the kubelet started; if `up` itself is killed, its
watchdog does (see :mod:`localkube.lifetime`), and the next `up` in the same workdir
stops whatever a dead instance left behind, and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main", "register", "run"]


def default_workdir() -> Path:
    return Path(os.environ.get("KUBELLM_LOCALKUBE_DIR", Path.home() / ".kubellm" / "localkube"))


HELP = "run a local Kubernetes API emulator with kubelet and controllers"
DESCRIPTION = (
    "A local Kubernetes (API server, kubelet running pods as processes, "
    "Deployment/Job/HPA controllers, service proxy on loopback)."
)


def register(subparsers: Any) -> None:
    """`kubellm localkube ...`: the kubellm command delegates here when localkube is installed."""
    parser = subparsers.add_parser("localkube", help=HELP, description=DESCRIPTION)
    _add_actions(parser)


def build_parser() -> argparse.ArgumentParser:
    """The `localkube` command of its own (`localkube up`, `python -m localkube up`)."""
    parser = argparse.ArgumentParser(prog="localkube", description=DESCRIPTION)
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: INFO)",
    )
    _add_actions(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    import logging

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run(args)


def _add_actions(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(handler=run, localkube_command=None)
    sub = parser.add_subparsers(dest="localkube_command", metavar="ACTION")
    up = sub.add_parser(
        "up", help="run a cluster in the foreground", description="Run until SIGINT/SIGTERM."
    )
    up.add_argument(
        "--host", default="127.0.0.1", help="API server address (default 127.0.0.1; loopback only)"
    )
    up.add_argument(
        "--allow-non-loopback",
        action="store_true",
        help="let --host name a non-loopback address (the API is plain HTTP: its token "
        "crosses the network in clear)",
    )
    up.add_argument("--port", type=int, default=0, help="API server port (default: a free port)")
    up.add_argument(
        "--state-file", type=Path, help="persist API objects in this file across restarts"
    )
    up.add_argument(
        "--kubeconfig", type=Path, help="where to write the kubeconfig (default WORKDIR/kubeconfig)"
    )
    up.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="pod dirs, logs, pid (default ~/.localkube/src/localkube)",
    )
    up.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply controller timings (backoffs, probe periods, deadlines) by this factor",
    )
    up.add_argument(
        "--control-plane",
        choices=("localkube", "real"),
        default="localkube",
        help="localkube's emulated API server (default), or a real kube-apiserver, "
        "controller-manager, scheduler and etcd (built by `make realkube`) with localkube's "
        "kubelet and service proxy as the node",
    )
    up.add_argument(
        "--gpus",
        type=int,
        default=0,
        help="real control plane: nvidia.com/gpu capacity the node advertises (scheduling only)",
    )
    up.add_argument(
        "--pod-fault",
        action="append",
        default=[],
        metavar="JSON",
        help='a pod-process fault, e.g. \'{"kind": "crash", "namePrefix": "web-", "after": 1}\'',
    )
    for name, text in (
        ("down", "stop the cluster recorded in the workdir"),
        ("status", "list the running clusters, or report on the one in --workdir"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("--workdir", type=Path, default=None, help="the cluster's workdir")
        if name == "down":
            p.add_argument("--timeout", type=float, default=20.0, help="seconds before SIGKILL")


def run(args: argparse.Namespace) -> int:
    workdir = args.workdir or default_workdir()
    if args.localkube_command == "up":
        return _up(args, workdir)
    if args.localkube_command == "down":
        return _down(workdir, args.timeout)
    if args.localkube_command == "status":
        return _status(args.workdir)
    print("usage: kubellm localkube {up,down,status} [...]", file=sys.stderr)
    return 2


def _up(args: argparse.Namespace, workdir: Path) -> int:
    """Check the host, take over the workdir, claim address blocks, then serve until told."""
    import asyncio

    from localkube import instances
    from localkube.apiserver.auth import NotLoopback, check_host
    from localkube.controllers.faults import PodFault
    from localkube.lifetime import Guard
    from localkube.networking import loopback_aliases_work

    try:
        check_host(args.host, allow_non_loopback=args.allow_non_loopback)
        faults = [PodFault.from_dict(json.loads(text)) for text in args.pod_fault]
        workdir.mkdir(parents=True, exist_ok=True)
        note = instances.take_over_workdir(workdir)
        claim = instances.claim_blocks(aliases=loopback_aliases_work())
    except (NotLoopback, instances.InstanceRunning, instances.NoFreeBlocks, ValueError) as exc:
        print(f"localkube: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, NotLoopback) else 1
    if note:
        print(f"localkube: {note}", file=sys.stderr, flush=True)
    fd = claim.fileno()
    guard = Guard("localkube", keep_fds=() if fd is None else (fd,))
    try:
        asyncio.run(_serve(args, workdir, claim, guard, faults))
    finally:
        leaked = guard.close()
        if leaked:
            print(f"localkube: stopped {len(leaked)} process(es) left running", file=sys.stderr)
        claim.release()
    return 0


def _cluster(args: argparse.Namespace, workdir: Path, claim: Any, guard: Any) -> Any:
    """The cluster `--control-plane` names, on the claimed address blocks."""
    if args.control_plane == "real":
        from localkube.realkube.cluster import RealCluster

        return RealCluster(
            workdir,
            kubeconfig_path=args.kubeconfig,
            time_scale=args.time_scale,
            gpus=args.gpus,
            service_cidr=claim.blocks.services,
            pod_cidr=claim.blocks.pods,
            guard=guard,
            keep_fds=() if claim.fileno() is None else (claim.fileno(),),
        )
    from localkube.cluster import LocalCluster

    return LocalCluster(
        workdir,
        host=args.host,
        port=args.port,
        state_file=args.state_file,
        kubeconfig_path=args.kubeconfig,
        time_scale=args.time_scale,
        claim=claim,
        guard=guard,
        allow_non_loopback=args.allow_non_loopback,
    )


async def _serve(
    args: argparse.Namespace, workdir: Path, claim: Any, guard: Any, faults: list[Any]
) -> None:
    import asyncio

    from localkube import instances
    from localkube.lifetime import process_start

    cluster = _cluster(args, workdir, claim, guard)
    for f in faults:
        cluster.pod_faults.add(f)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    state: instances.InstanceState | None = None
    try:
        await cluster.start()
        state = instances.InstanceState(
            pid=os.getpid(),
            url=cluster.url,
            kubeconfig=str(cluster.kubeconfig_path),
            workdir=str(workdir.resolve()),
            tag=guard.tag,
            pod_cidr=claim.blocks.pods,
            service_cidr=claim.blocks.services,
            control_plane=args.control_plane,
            # the /_localkube admin endpoints: the API server itself for localkube
            admin_url=getattr(cluster, "admin_url", "") or cluster.url,
            version=getattr(cluster, "version", ""),
            process_start=process_start(os.getpid()),
        )
        instances.register(state)
        kind = f"kube-apiserver {cluster.version}" if args.control_plane == "real" else "localkube"
        print(f"{kind} is up at {cluster.url}", flush=True)
        print(f"pods {claim.blocks.pods}, services {claim.blocks.services}", flush=True)
        print(f"export KUBECONFIG={cluster.kubeconfig_path}", flush=True)
        await stop.wait()
    finally:
        await cluster.stop()
        if state is not None:
            instances.unregister(state)


def _down(workdir: Path, timeout: float) -> int:
    from localkube import instances
    from localkube.lifetime import sweep

    state = instances.read_state(workdir)
    if state is None or not state.alive():
        others = ", ".join(s.workdir for s in instances.running_instances())
        hint = f" (running: {others}; pick one with --workdir)" if others else ""
        print(f"no localkube running for {workdir}{hint}", file=sys.stderr)
        if state is not None:
            note = instances.take_over_workdir(workdir)
            print(f"localkube: {note}", file=sys.stderr)
        return 1
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and state.alive():
        time.sleep(0.1)
    if state.alive():
        os.kill(state.pid, signal.SIGKILL)
        sweep(state.tag)
        instances.unregister(state)
        print(
            f"localkube (pid {state.pid}) did not stop in {timeout:.0f}s: killed", file=sys.stderr
        )
        return 1
    print(f"localkube (pid {state.pid}) stopped")
    return 0


def _healthy(state: Any) -> bool:
    from localkube.apiserver.auth import read_credentials

    try:
        context = read_credentials(Path(state.kubeconfig)).ssl_context()
        admin = state.admin_url or state.url
        with urllib.request.urlopen(
            admin + "/_localkube/healthz", timeout=3, context=context
        ) as resp:
            return bool(resp.status == 200)
    except (OSError, ValueError):
        return False


def _status(workdir: Path | None) -> int:
    """One instance (`--workdir`), or a table of every running instance of this user."""
    from localkube import instances

    if workdir is None:
        running = instances.running_instances()
        if not running:
            print("localkube: no instance running")
            return 1
        rows = [("PID", "CONTROL PLANE", "URL", "PODS", "SERVICES", "AGE", "WORKDIR")]
        for s in running:
            age = _age(time.time() - s.started_at)
            word = "" if _healthy(s) else " (not answering)"
            row = (str(s.pid), s.control_plane, s.url + word, s.pod_cidr, s.service_cidr, age)
            rows.append((*row, s.workdir))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
        return 0
    state = instances.read_state(workdir)
    if state is None or not state.alive():
        print(f"localkube: not running ({workdir})")
        return 1
    healthy = _healthy(state)
    word = "running" if healthy else "not answering"
    print(f"localkube: {word} at {state.url} (pid {state.pid})")
    print(f"pods {state.pod_cidr}, services {state.service_cidr}")
    print(f"export KUBECONFIG={state.kubeconfig}")
    return 0 if healthy else 1


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"
