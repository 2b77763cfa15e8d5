"""Watching the demo progress: the chart's rollout, the LLM's status, and stuck pods.

A live table shows the LLM's phase, training, candidate and production; a pod that is not
Ready within the bound ends the demo with its reason and last log lines, and a refused
candidate ends it with the gate's verdict.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kubellm.demo.common import NAMESPACE, DemoFailure, kubectl
from kubellm.podhealth import NOT_READY_BOUND, StuckPod, stuck_pods

__all__ = [
    "POD_CHECK_EVERY",
    "Stall",
    "check_pods",
    "progress_rows",
    "refusal",
    "wait_rollout",
    "watch",
]

POD_CHECK_EVERY = 5.0


class Stall:
    """How long the LLM's progress has stood still.

    The demo gives up after ``--timeout`` seconds WITHOUT progress, not after that long in
    all: on a slow or busy machine training may take longer than the timeout while its
    step and loss move on, and quitting then would throw away a run that was going to
    promote. Progress is any change of what the live table shows.
    """

    def __init__(self, now: float) -> None:
        self._since = now
        self._last: object = None

    def seen(self, rows: object, now: float) -> float:
        """Record what the table shows at ``now``; seconds since it last changed."""
        if rows != self._last:
            self._last = rows
            self._since = now
        return now - self._since


def progress_rows(status: dict[str, Any]) -> list[tuple[str, str]]:
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


def check_pods(cluster: Any, console: Any, bound: float) -> None:
    """Raise :class:`DemoFailure`, after a report, if a pod is not Ready after `bound`."""
    out = kubectl(cluster, "get", "pods", "-A", "-o", "json", check=False)
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
    logs = kubectl(cluster, "logs", *where, check=False)
    if pod.restarts:
        previous = kubectl(cluster, "logs", "--previous", *where, check=False)
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


def wait_rollout(cluster: Any, console: Any, timeout: float, bound: float) -> None:
    """Wait until the chart's Deployments are available, failing fast on a stuck pod."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = kubectl(cluster, "-n", NAMESPACE, "get", "deploy", "-o", "json", check=False)
        items = (json.loads(out) if out.strip() else {}).get("items") or []
        if items and all(
            (d.get("status") or {}).get("availableReplicas", 0)
            >= (d.get("spec") or {}).get("replicas", 1)
            for d in items
        ):
            return
        check_pods(cluster, console, bound)
        time.sleep(1.0)
    raise DemoFailure(f"the operator was not available within {timeout:.0f}s")


def watch(
    cluster: Any, name: str, timeout: float, console: Any, bound: float = NOT_READY_BOUND
) -> dict[str, Any]:
    from rich.live import Live
    from rich.table import Table

    started = time.monotonic()
    checked = started
    stall = Stall(started)
    status: dict[str, Any] = {}
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        while stall.seen(progress_rows(status), time.monotonic()) < timeout:
            if time.monotonic() - checked >= POD_CHECK_EVERY:
                checked = time.monotonic()
                check_pods(cluster, console, bound)
            out = kubectl(cluster, "get", "llm", name, "-o", "json", check=False)
            if out.strip():
                status = json.loads(out).get("status") or {}
            table = Table(
                title=f"llm/{name}  ({time.monotonic() - started:.0f}s)", show_header=False
            )
            for key, value in progress_rows(status):
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
    raise DemoFailure(
        f"no progress for {timeout:.0f}s, no promotion after "
        f"{time.monotonic() - started:.0f}s (phase {phase}{detail})"
    )
