"""`kubellm localkube up|down|status`: run a local cluster in the foreground and manage it.

`up` runs the API server and controllers until SIGINT/SIGTERM, writes a kubeconfig and
prints `export KUBECONFIG=...`; it records its pid and URL in the work directory so that
`down` (from another shell) can stop it and `status` can report on it. Stopping kills every
process the kubelet started.
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

__all__ = ["register", "run"]

STATE_FILE = "localkube.json"


def default_workdir() -> Path:
    return Path(os.environ.get("KUBELLM_LOCALKUBE_DIR", Path.home() / ".kubellm" / "localkube"))


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "localkube",
        help="run a local Kubernetes API emulator with kubelet and controllers",
        description="A local Kubernetes (API server, kubelet running pods as processes, "
        "Deployment/Job/HPA controllers, service proxy on loopback).",
    )
    parser.set_defaults(handler=run, localkube_command=None)
    sub = parser.add_subparsers(dest="localkube_command", metavar="ACTION")
    up = sub.add_parser(
        "up", help="run a cluster in the foreground", description="Run until SIGINT/SIGTERM."
    )
    up.add_argument("--host", default="127.0.0.1", help="API server address (default 127.0.0.1)")
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
        help="pod dirs, logs, pid (default ~/.kubellm/localkube)",
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
        ("status", "report on it"),
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
        return _status(workdir)
    print("usage: kubellm localkube {up,down,status} [...]", file=sys.stderr)
    return 2


def _up(args: argparse.Namespace, workdir: Path) -> int:
    import asyncio

    from kubellm.localkube.cluster import LocalCluster
    from kubellm.localkube.controllers.faults import PodFault

    faults = [PodFault.from_dict(json.loads(text)) for text in args.pod_fault]
    workdir.mkdir(parents=True, exist_ok=True)

    async def main() -> None:
        cluster: Any
        if args.control_plane == "real":
            from kubellm.localkube.realkube.cluster import RealCluster

            cluster = RealCluster(
                workdir,
                kubeconfig_path=args.kubeconfig,
                time_scale=args.time_scale,
                gpus=args.gpus,
            )
        else:
            cluster = LocalCluster(
                workdir,
                host=args.host,
                port=args.port,
                state_file=args.state_file,
                kubeconfig_path=args.kubeconfig,
                time_scale=args.time_scale,
            )
        for f in faults:
            cluster.pod_faults.add(f)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await cluster.start()
        state = {
            "pid": os.getpid(),
            "url": cluster.url,
            "kubeconfig": str(cluster.kubeconfig_path),
            "controlPlane": args.control_plane,
            # the /_localkube admin endpoints: the API server itself for localkube
            "adminUrl": getattr(cluster, "admin_url", "") or cluster.url,
            "version": getattr(cluster, "version", ""),
        }
        (workdir / STATE_FILE).write_text(json.dumps(state))
        kind = f"kube-apiserver {cluster.version}" if args.control_plane == "real" else "localkube"
        print(f"{kind} is up at {cluster.url}", flush=True)
        print(f"export KUBECONFIG={cluster.kubeconfig_path}", flush=True)
        try:
            await stop.wait()
        finally:
            await cluster.stop()
            (workdir / STATE_FILE).unlink(missing_ok=True)

    asyncio.run(main())
    return 0


def _read_state(workdir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((workdir / STATE_FILE).read_text())
        return data
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """True while the process runs (a zombie waiting for its parent to reap it has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _down(workdir: Path, timeout: float) -> int:
    state = _read_state(workdir)
    if state is None or not _alive(int(state["pid"])):
        print(f"no localkube running for {workdir}", file=sys.stderr)
        (workdir / STATE_FILE).unlink(missing_ok=True)
        return 1
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
        print(f"localkube (pid {pid}) did not stop in {timeout:.0f}s: killed", file=sys.stderr)
        return 1
    print(f"localkube (pid {pid}) stopped")
    return 0


def _status(workdir: Path) -> int:
    state = _read_state(workdir)
    if state is None or not _alive(int(state["pid"])):
        print(f"localkube: not running ({workdir})")
        return 1
    try:
        admin = state.get("adminUrl") or state["url"]
        with urllib.request.urlopen(admin + "/_localkube/healthz", timeout=3) as resp:
            healthy = resp.status == 200
    except OSError:
        healthy = False
    word = "running" if healthy else "not answering"
    print(f"localkube: {word} at {state['url']} (pid {state['pid']})")
    print(f"export KUBECONFIG={state['kubeconfig']}")
    return 0 if healthy else 1
