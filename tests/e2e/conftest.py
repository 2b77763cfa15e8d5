"""The whole system for e2e tests: localkube, an MLflow server, the operator as a process.

Everything runs for real on loopback: the operator is `python -m kubellm operator` talking
HTTP to localkube; its children are real `kubellm train|serve|loadtest` processes started by
localkube's kubelet; MLflow is a real tracking server that sends signed webhooks. With
KUBECONFIG pointing at a real cluster the same tests could run there (the operator would
then be the chart's Deployment).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kubellm.testing.localkube import Cluster, local_cluster
from kubellm.testing.mlflow import mlflow_server

REPO = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "e2e-webhook-secret"
CHILD_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONUNBUFFERED": "1",
    "OMP_NUM_THREADS": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Operator:
    """The operator process; can be killed and restarted like a crashed pod."""

    cluster: Cluster
    mlflow_url: str
    log_path: Path
    webhook_port: int = field(default_factory=free_port)
    webhooks: bool = True
    poll_interval: str = "3s"
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        env = self.cluster.env(
            KUBELLM_CHILD_COMMAND=f"{sys.executable} -m kubellm",
            KUBELLM_CHILD_ENV=json.dumps(CHILD_ENV),
            KUBELLM_POLL_INTERVAL=self.poll_interval,
            KUBELLM_DRAIN_DELAY="2s",
            KUBELLM_WEBHOOK_HOST="127.0.0.1",
            **CHILD_ENV,
        )
        env.pop("KUBELLM_WEBHOOK_SECRET", None)
        if self.webhooks:
            env["KUBELLM_WEBHOOK_SECRET"] = WEBHOOK_SECRET
            env["KUBELLM_WEBHOOK_PUBLIC_URL"] = self.webhook_url
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubellm",
                "operator",
                "--tracking-uri",
                self.mlflow_url,
                "--webhook-port",
                str(self.webhook_port),
                "--liveness-port",
                "0",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.starts += 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.webhook_port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"operator exited; see {self.log_path}") from None
                time.sleep(0.2)
        raise RuntimeError("operator did not open its webhook port")

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}/webhooks/mlflow"

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class System:
    cluster: Cluster
    mlflow_url: str
    operator: Operator
    workdir: Path

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> str:
        result = self.cluster.kubectl(*args, timeout=60, input=stdin)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return str(result.stdout)

    def llm(self, name: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", "llm", name, "-o", "json")))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.llm(name).get("status") or {})

    def wait_for(
        self, what: str, predicate: Callable[[], Any], timeout: float, interval: float = 1.0
    ) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except (AssertionError, KeyError, ValueError) as exc:
                last = exc
            if last and not isinstance(last, Exception):
                return last
            time.sleep(interval)
        raise AssertionError(
            f"timed out after {timeout:.0f}s waiting for {what}; last: {last}; "
            f"operator log: {self.operator.log_path}"
        )

    def names(self, kind: str) -> list[str]:
        out = self.kubectl("get", kind, "-o", "jsonpath={.items[*].metadata.name}")
        return sorted(out.split())


def e2e_manifest(
    name: str = "support-bot", *, max_steps: int = 30, p95_ms: int = 20000
) -> dict[str, Any]:
    """The tiny-pretrain example, shortened for tests (fewer steps, a short load test)."""
    import yaml

    obj = yaml.safe_load((REPO / "examples/tiny-pretrain.yaml").read_text())
    obj["metadata"]["name"] = name
    spec = obj["spec"]
    spec["training"]["dataset"]["uri"] = str(REPO / "examples/data/support-corpus.txt")
    spec["training"]["hyperparameters"].update(maxSteps=max_steps, sequenceLength=32)
    spec["training"]["resources"] = {}
    spec["serving"]["resources"] = {}
    spec["serving"]["drainSeconds"] = 3
    spec["rollout"]["loadTest"].update(
        duration="4s", warmup="1s", users=2, spawnRate=2, maxTokens=8
    )
    spec["rollout"]["loadTest"]["slo"] = {"p95LatencyMs": p95_ms, "maxErrorRate": "0.01"}
    return dict(obj)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    workdir = tmp_path_factory.mktemp("e2e")
    with (
        mlflow_server(workdir / "mlflow", webhooks=True) as mlflow_url,
        local_cluster(workdir / "kube", time_scale=1.0) as cluster,
    ):
        crd = REPO / "charts/kubellm/crds/llms.kubellm.dev.yaml"
        cluster.kubectl("apply", "-f", str(crd), check=True)
        cluster.kubectl(
            "wait",
            "--for=condition=Established",
            "crd/llms.kubellm.dev",
            "--timeout=30s",
            check=True,
        )
        operator = Operator(cluster, mlflow_url, workdir / "operator.log")
        operator.start()
        try:
            yield System(cluster, mlflow_url, operator, workdir)
        finally:
            operator.stop()
            os.environ.pop("KUBELLM_WEBHOOK_SECRET", None)
