"""`kubellm demo`: the whole lifecycle on one laptop, installed the way a cluster installs it.

It starts localkube and an MLflow server on loopback, renders the Helm chart with helm and
applies it with kubectl (so the operator runs as the chart's Deployment, a pod like any
other), applies `examples/tiny-pretrain.yaml`, and shows live progress until the first
version is promoted. Then it prints how to talk to the production endpoint. Every process it
started is stopped on exit, including on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["register"]

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "kubellm-system"
EXAMPLE = REPO / "examples" / "tiny-pretrain.yaml"


def _kubectl(cluster: Any, *args: str, stdin: str | None = None, check: bool = True) -> str:
    result = cluster.kubectl(*args, input=stdin, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return str(result.stdout)


def render_chart(helm: str, mlflow_url: str, kubeconfig: Path, webhook_port: int) -> str:
    """The chart rendered for localkube: the operator container runs this Python."""
    child_env = {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }
    extra_env = [
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
    values = {
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
    }
    values_file = kubeconfig.with_name(kubeconfig.name + "-values.json")
    values_file.write_text(json.dumps(values))
    result = subprocess.run(
        [
            helm,
            "template",
            "kubellm",
            str(REPO / "charts" / "kubellm"),
            "--namespace",
            NAMESPACE,
            "--include-crds",
            "-f",
            str(values_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"helm template failed: {result.stderr.strip()}")
    return result.stdout


def demo_manifest(example: Path) -> str:
    """The example LLM with its dataset path made absolute (pods run in their own dirs).

    Written as JSON: PyYAML emits `3e-3` unquoted, which kubectl's YAML 1.2 parser reads as
    a number where the CRD wants a string.
    """
    import yaml

    obj = yaml.safe_load(example.read_text())
    dataset = obj["spec"]["training"]["dataset"]
    if "://" not in dataset["uri"] and not dataset["uri"].startswith("/"):
        dataset["uri"] = str((REPO / dataset["uri"]).resolve())
    return json.dumps(obj)


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


def _watch(cluster: Any, name: str, timeout: float, console: Any) -> dict[str, Any]:
    from rich.live import Live
    from rich.table import Table

    started = time.monotonic()
    status: dict[str, Any] = {}
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while time.monotonic() - started < timeout:
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
            time.sleep(1.0)
    raise TimeoutError(f"no promotion within {timeout:.0f}s; last status: {status}")


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


def _print_summary(console: Any, status: dict[str, Any], mlflow_url: str, elapsed: float) -> None:
    prod = status.get("production") or {}
    address = prod.get("address") or ""
    history = status.get("history") or [{}]
    console.print(
        f"\n[bold green]version {prod.get('version')} promoted after "
        f"{elapsed:.0f}s[/]  (p95 {history[0].get('p95Ms')} ms)"
    )
    console.print(f"production endpoint: {address}  (in-cluster: {prod.get('endpoint')})")
    answer = check_endpoint(address, "support-bot")
    console.print(f"endpoint check: completion -> {answer!r}")
    console.print("\ntry it:")
    console.print(
        f"  curl -s {address}/v1/completions -H 'Content-Type: application/json' "
        f'-d \'{{"model": "support-bot", "prompt": "Question: How do I roll back?", '
        f'"max_tokens": 24}}\''
    )
    console.print(
        '  python -c "from openai import OpenAI; '
        f"c = OpenAI(base_url='{address}/v1', api_key='none'); "
        "print(c.completions.create(model='support-bot', prompt='The operator', "
        'max_tokens=24).choices[0].text)"'
    )
    console.print(f"\nMLflow UI: {mlflow_url}")
    console.print(f"load-test report: {_report_path(mlflow_url, str(prod.get('version')))}")


@contextlib.contextmanager
def _services(workdir: Path) -> Iterator[tuple[str, Any]]:
    from kubellm.testing.localkube import local_cluster
    from kubellm.testing.mlflow import mlflow_server

    with (
        mlflow_server(workdir / "mlflow", webhooks=True) as mlflow_url,
        local_cluster(workdir / "localkube", time_scale=1.0) as cluster,
    ):
        yield mlflow_url, cluster


def run_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    from kubellm.tools.binaries import ensure

    console = Console()
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    tools = ensure()
    console.print(f"[bold]kubellm demo[/] in {workdir}")
    with contextlib.ExitStack() as stack:
        mlflow_url, cluster = stack.enter_context(_services(workdir))
        console.print(
            f"localkube API: {cluster.url}   (export KUBECONFIG={cluster.kubeconfig_path})"
        )
        console.print(f"MLflow:        {mlflow_url}")
        _kubectl(cluster, "create", "namespace", NAMESPACE, check=False)
        rendered = render_chart(
            tools["helm"],
            mlflow_url,
            Path(cluster.kubeconfig_path),
            args.webhook_port,
        )
        console.print("installing the chart (helm template | kubectl apply) ...")
        _kubectl(cluster, "apply", "-f", "-", stdin=rendered)
        _kubectl(
            cluster, "wait", "--for=condition=Established", "crd/llms.kubellm.dev", "--timeout=60s"
        )
        _kubectl(cluster, "-n", NAMESPACE, "rollout", "status", "deploy", "--timeout=120s")
        console.print(f"applying {EXAMPLE.relative_to(REPO)} ...")
        _kubectl(cluster, "apply", "-f", "-", stdin=demo_manifest(EXAMPLE))
        status = _watch(cluster, "support-bot", args.timeout, console)
        _print_summary(console, status, mlflow_url, time.monotonic() - started)
        if args.once:
            return 0
        console.print("\n[dim]running; Ctrl-C stops every process the demo started[/]")
        stop = {"now": False}

        def _stop(*_: Any) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, _stop)
        try:
            while not stop["now"]:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    console.print("stopped.")
    return 0


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
        "--timeout",
        type=float,
        default=float(os.environ.get("KUBELLM_DEMO_TIMEOUT", "600")),
        help="seconds to wait for the first promotion (default 600)",
    )
    p.add_argument("--workdir", default=".kubellm/demo", help="state and logs")
    p.add_argument(
        "--webhook-port",
        type=int,
        default=18080,
        help="operator webhook/metrics port on its pod IP (default 18080)",
    )
    p.set_defaults(handler=run_demo)
