"""`kubellm demo`: the whole lifecycle on one laptop, installed the way a cluster installs it.

It starts localkube and an MLflow server on loopback, renders the Helm chart with helm and
applies it with kubectl (so the operator runs as the chart's Deployment, a pod like any
other), applies `examples/tiny-pretrain.yaml`, and shows live progress until the first
version is promoted. Then it prints how to talk to the production endpoint. Every process it
started is stopped on exit, including on Ctrl-C, and also when the demo itself is killed
(SIGKILL, the OOM killer, a closed terminal): a :class:`~localkube.lifetime.Guard`
tags every process it starts and its watchdog stops them; the next demo in the same workdir
stops whatever a dead one left and says so, and starts from a clean slate (the previous
run's files move to `previous-run/`). A pod that is not Ready after 60 s ends the demo with
its name, reason and last log lines; every failure ends in one sentence and exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubellm.api.identity import GROUP, PLURAL
from kubellm.devtools import LocalkubeMissing, require_localkube
from kubellm.podhealth import NOT_READY_BOUND, StuckPod, stuck_pods

__all__ = ["DemoFailure", "register"]

REPO = Path(__file__).resolve().parents[1]
#: an installed wheel's copy of the repository's charts/kubellm and examples (setup.py)
SHARE = Path(__file__).resolve().parent / "_share"
NAMESPACE = "kubellm-system"
CHART = Path("charts") / "kubellm"
EXAMPLE = Path("examples") / "tiny-pretrain.yaml"
STATE = "demo.json"
PREVIOUS = "previous-run"
POD_CHECK_EVERY = 5.0


class DemoFailure(RuntimeError):
    """Ends the demo: its message is the one sentence the user reads."""


def share_root() -> Path:
    """Where `charts/kubellm` and `examples/` are: an installed wheel's copy, else the checkout.

    Both have the repository's layout, so the dataset paths the examples name (relative to
    the repository root) resolve against the same folder.
    """
    return SHARE if (SHARE / CHART).is_dir() else REPO


def _kubectl(cluster: Any, *args: str, stdin: str | None = None, check: bool = True) -> str:
    result = cluster.kubectl(*args, input=stdin, timeout=120)
    if check and result.returncode != 0:
        raise DemoFailure(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return str(result.stdout)


def render_chart(
    helm: str,
    mlflow_url: str,
    kubeconfig: Path,
    webhook_port: int,
    pass_kubeconfig: bool = True,
    chart: Path | None = None,
) -> str:
    """The chart rendered for localkube: the operator container runs this Python."""
    from localkube import lifetime

    child_env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }
    extra_env: list[dict[str, Any]] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "KUBECONFIG", "value": str(kubeconfig)},
        {"name": "KUBELLM_CHILD_COMMAND", "value": f"{sys.executable} -m kubellm"},
        {"name": "KUBELLM_CHILD_ENV", "value": json.dumps(child_env)},
        {"name": "KUBELLM_WEBHOOK_HOST", "value": "$(POD_IP)"},
        {"name": "KUBELLM_LIVENESS_HOST", "value": "$(POD_IP)"},
        {"name": "KUBELLM_DRAIN_DELAY", "value": "2s"},
        {
            "name": "KUBELLM_WEBHOOK_PUBLIC_URL",
            "value": f"http://$(POD_IP):{webhook_port}/webhooks/mlflow",
        },
        {"name": "HF_HUB_OFFLINE", "value": "1"},
        {"name": "MLFLOW_DISABLE_TELEMETRY", "value": "true"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    values: dict[str, Any] = {
        "image": {"command": [sys.executable, "-m", "kubellm", "operator"], "pullPolicy": "Never"},
        "operator": {
            "pollInterval": "5s",
            "webhookPort": webhook_port,
            "extraEnv": extra_env,
            # the demo runs as the developer's user, not the image's uid 10001
            "podSecurityContext": {"runAsNonRoot": False},
            "securityContext": {"runAsNonRoot": False, "readOnlyRootFilesystem": False},
        },
        "mlflow": {"trackingUri": mlflow_url},
        # the gateway as a local process too: this Python, the kubeconfig, its pod IP
        "gateway": {
            "command": [sys.executable, "-m", "kubellm", "gateway"],
            "extraEnv": [
                *extra_env[:2],  # POD_IP, KUBECONFIG
                {"name": "KUBELLM_GATEWAY_HOST", "value": "$(POD_IP)"},
            ],
        },
    }
    if not pass_kubeconfig:
        for env in (extra_env, values["gateway"]["extraEnv"]):
            env[:] = [e for e in env if e["name"] != "KUBECONFIG"]
    values_file = kubeconfig.with_name(kubeconfig.name + "-values.json")
    values_file.write_text(json.dumps(values))
    result = subprocess.run(
        [
            helm,
            "template",
            "kubellm",
            str(chart or share_root() / CHART),
            "--namespace",
            NAMESPACE,
            "--include-crds",
            "-f",
            str(values_file),
        ],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lifetime.die_with_parent(signal.SIGKILL),
    )
    if result.returncode != 0:
        raise DemoFailure(f"helm template failed: {result.stderr.strip()}")
    return result.stdout


def demo_manifest(example: Path, root: Path | None = None) -> str:
    """The example LLM with its dataset path made absolute (pods run in their own dirs).

    A relative dataset path is relative to `root` (the repository's layout: default
    :func:`share_root`). Written as JSON: PyYAML emits `3e-3` unquoted, which kubectl's
    YAML 1.2 parser reads as a number where the CRD wants a string.
    """
    import yaml

    obj = yaml.safe_load(example.read_text())
    dataset = obj["spec"]["training"]["dataset"]
    if "://" not in dataset["uri"] and not dataset["uri"].startswith("/"):
        dataset["uri"] = str(((root or share_root()) / dataset["uri"]).resolve())
    return json.dumps(obj)


def manifest_name(manifest: str) -> str:
    """The LLM a :func:`demo_manifest` names: the demo watches it, its endpoint serves it."""
    name = (json.loads(manifest).get("metadata") or {}).get("name")
    if not name:
        raise DemoFailure("the example manifest names no LLM (metadata.name)")
    return str(name)


def _progress_rows(status: dict[str, Any]) -> list[tuple[str, str]]:
    rows = [("phase", str(status.get("phase") or "Pending"))]
    training = status.get("training") or {}
    if training:
        step = training.get("step")
        total = training.get("totalSteps")
        loss = training.get("loss")
        text = training.get("state") or ""
        if step is not None:
            text += f"  step {step}/{total or '?'}"
        if loss is not None:
            text += f"  loss {loss:.4f}"
        if training.get("modelVersion"):
            text += f"  -> version {training['modelVersion']}"
        rows.append(("training", text))
    cand = status.get("candidate") or {}
    if cand:
        lt = cand.get("loadTest") or {}
        text = f"v{cand.get('version')} {cand.get('state') or ''}"
        if lt:
            text += (
                f"  p95 {lt.get('p95Ms')} ms  {lt.get('requestsPerSecond')} req/s  "
                f"errors {lt.get('errorRate')}  verdict {lt.get('verdict')}"
            )
        rows.append(("candidate", text))
    prod = status.get("production") or {}
    if prod:
        rows.append(("production", f"v{prod.get('version')}  {prod.get('address') or ''}"))
    if status.get("message"):
        rows.append(("waiting for", str(status["message"])[:120]))
    return rows


def _check_pods(cluster: Any, console: Any, bound: float) -> None:
    """Raise :class:`DemoFailure`, after a report, if a pod is not Ready after `bound`."""
    out = _kubectl(cluster, "get", "pods", "-A", "-o", "json", check=False)
    try:
        pods = json.loads(out).get("items") or []
    except ValueError:
        return
    stuck = stuck_pods(pods, time.time(), bound)
    if stuck:
        _report_stuck(cluster, console, stuck[0])
        raise DemoFailure(stuck[0].sentence())


def _report_stuck(cluster: Any, console: Any, pod: StuckPod) -> None:
    from rich.panel import Panel

    where = ["-n", pod.namespace, pod.name, "--all-containers", "--tail=20"]
    logs = _kubectl(cluster, "logs", *where, check=False)
    if pod.restarts:
        previous = _kubectl(cluster, "logs", "--previous", *where, check=False)
        logs = previous if previous.strip() else logs
    console.print(
        Panel(
            logs.rstrip() or "(no output)",
            title=f"{pod.namespace}/{pod.name}: {pod.reason}",
            subtitle="last log lines",
            border_style="red",
        )
    )


def refusal(status: dict[str, Any]) -> str | None:
    """The gate's verdict when it refused the candidate (the demo cannot promote then)."""
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("CandidateReady") or {}
    if ready.get("status") != "False" or ready.get("reason") != "CandidateRefused":
        return None
    verdict = conditions.get("LoadTestPassed") or {}
    return f"the load test refused the candidate: {verdict.get('message') or ready.get('message')}"


def _wait_rollout(cluster: Any, console: Any, timeout: float, bound: float) -> None:
    """Wait until the chart's Deployments are available, failing fast on a stuck pod."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = _kubectl(cluster, "-n", NAMESPACE, "get", "deploy", "-o", "json", check=False)
        items = (json.loads(out) if out.strip() else {}).get("items") or []
        if items and all(
            (d.get("status") or {}).get("availableReplicas", 0)
            >= (d.get("spec") or {}).get("replicas", 1)
            for d in items
        ):
            return
        _check_pods(cluster, console, bound)
        time.sleep(1.0)
    raise DemoFailure(f"the operator was not available within {timeout:.0f}s")


def _watch(
    cluster: Any, name: str, timeout: float, console: Any, bound: float = NOT_READY_BOUND
) -> dict[str, Any]:
    from rich.live import Live
    from rich.table import Table

    started = time.monotonic()
    checked = started
    status: dict[str, Any] = {}
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while time.monotonic() - started < timeout:
            if time.monotonic() - checked >= POD_CHECK_EVERY:
                checked = time.monotonic()
                _check_pods(cluster, console, bound)
            out = _kubectl(cluster, "get", "llm", name, "-o", "json", check=False)
            if out.strip():
                status = json.loads(out).get("status") or {}
            table = Table(
                title=f"llm/{name}  ({time.monotonic() - started:.0f}s)", show_header=False
            )
            for key, value in _progress_rows(status):
                table.add_row(key, value)
            live.update(table)
            if status.get("phase") == "Ready" and (status.get("production") or {}).get("version"):
                return status
            refused = refusal(status)
            if refused:
                raise DemoFailure(refused)
            time.sleep(1.0)
    phase = status.get("phase") or "Pending"
    detail = f": {status['message']}" if status.get("message") else ""
    raise DemoFailure(f"no promotion within {timeout:.0f}s (phase {phase}{detail})")


def _report_path(mlflow_url: str, version: str) -> str:
    try:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=mlflow_url)
        runs = client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            filter_string=f"tags.`kubellm.model_version` = '{version}'",
            max_results=5,
        )
        for run in runs:
            return f"{mlflow_url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    except Exception:
        pass
    return f"{mlflow_url} (experiment kubellm-loadtests)"


def check_endpoint(address: str, model: str) -> str:
    """One real completion through the production Service; raises if it does not answer."""
    import httpx

    resp = httpx.post(
        f"{address}/v1/completions",
        json={"model": model, "prompt": "Question: How do I roll back? Answer:", "max_tokens": 16},
        timeout=60,
    )
    resp.raise_for_status()
    return str(resp.json()["choices"][0]["text"])


def gateway_address(cluster: Any) -> str | None:
    """The chart's gateway Service (the client one, not the headless admin one), or None."""
    out = _kubectl(
        cluster,
        "get",
        "service",
        "-n",
        NAMESPACE,
        "-l",
        "app.kubernetes.io/component=gateway",
        "-o",
        "json",
        check=False,
    )
    try:
        items = json.loads(out).get("items") or []
    except ValueError:
        return None
    for svc in items:
        spec = svc.get("spec") or {}
        ip, ports = spec.get("clusterIP"), spec.get("ports") or []
        if ip and ip != "None" and ports:
            return f"http://{ip}:{ports[0]['port']}"
    return None


def _print_summary(
    console: Any, cluster: Any, status: dict[str, Any], mlflow_url: str, elapsed: float, model: str
) -> None:
    prod = status.get("production") or {}
    history = status.get("history") or [{}]
    console.print(
        f"\n[bold green]version {prod.get('version')} promoted after "
        f"{elapsed:.0f}s[/]  (p95 {history[0].get('p95Ms')} ms)"
    )
    gateway = gateway_address(cluster)
    address = gateway or prod.get("address") or ""
    # whole lines, never wrapped: a copied command must work as printed
    out = functools.partial(console.print, soft_wrap=True)
    if gateway:
        out(f"endpoint (the kubellm gateway): {gateway}")
        out(f"production release: {prod.get('address')}  (in-cluster: {prod.get('endpoint')})")
    else:
        out(f"production endpoint: {address}  (in-cluster: {prod.get('endpoint')})")
    answer = check_endpoint(address, model)
    out(f"endpoint check: completion -> {answer!r}")
    out("\ntry it:")
    out(
        f"  curl -s {address}/v1/completions -H 'Content-Type: application/json' "
        f'-d \'{{"model": "{model}", "prompt": "Question: How do I roll back?", '
        f'"max_tokens": 24}}\''
    )
    out(
        '  python -c "from openai import OpenAI; '
        f"c = OpenAI(base_url='{address}/v1', api_key='none'); "
        f"print(c.completions.create(model='{model}', prompt='The operator', "
        'max_tokens=24).choices[0].text)"'
    )
    console.print(f"\nMLflow UI: {mlflow_url}")
    console.print(f"load-test report: {_report_path(mlflow_url, str(prod.get('version')))}")


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
        _kubectl(cluster, "create", "namespace", NAMESPACE, check=False)
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
        _kubectl(cluster, "apply", "-f", "-", stdin=rendered)
        _kubectl(
            cluster, "wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s"
        )
        _wait_rollout(cluster, console, 180.0, args.not_ready_bound)
        console.print(f"applying {EXAMPLE} ...")
        manifest = demo_manifest(share_root() / EXAMPLE)
        name = manifest_name(manifest)
        _kubectl(cluster, "apply", "-f", "-", stdin=manifest)
        status = _watch(cluster, name, args.timeout, console, args.not_ready_bound)
        _print_summary(console, cluster, status, mlflow_url, time.monotonic() - started, name)
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
        help="seconds to wait for the first promotion (default 600)",
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
