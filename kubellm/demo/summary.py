"""The demo's last words: the promoted version, a checked endpoint, commands to copy.

Commands are printed as whole lines (never wrapped), so a copied `curl` works as printed.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from kubellm.demo.common import NAMESPACE, kubectl

__all__ = [
    "check_endpoint",
    "gateway_address",
    "print_summary",
]


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
    out = kubectl(
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


def print_summary(
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
