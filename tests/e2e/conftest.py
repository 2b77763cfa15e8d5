"""The whole system for e2e tests: a cluster, an MLflow server, the operator as a process.

Everything runs for real on loopback: the operator is `python -m kubellm operator`; its
children are real `kubellm train|serve|loadtest` processes started by localkube's kubelet;
MLflow is a real tracking server that sends signed webhooks. One cluster, one MLflow server,
one operator and (for the modules that need it) one gateway serve the whole session: each
module's LLMs and registered models have names of their own, and the module-scoped `system`
leaves the cluster as it found it.

`KUBELLM_E2E_CLUSTER` picks the cluster: `localkube` (the emulator, default) or `real`
(kube-apiserver, controller-manager, scheduler and etcd built by `make realkube`, with
localkube's kubelet as the node). On the real one the chart is installed with `helm install`
(CRD, RBAC, ServiceAccount; the operator Deployment at 0 replicas) and the operator process
authenticates with a token of the chart's ServiceAccount, so the real RBAC authorizer
enforces the chart's rules on every call it makes.
"""

from __future__ import annotations

import contextlib
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

import httpx
import pytest

from localkube.testing.localkube import Cluster, local_cluster
from localkube.testing.mlflow import mlflow_server

REPO = Path(__file__).resolve().parents[2]
E2E_CLUSTER = os.environ.get("KUBELLM_E2E_CLUSTER", "localkube")
if E2E_CLUSTER not in ("localkube", "real"):
    raise pytest.UsageError(f"KUBELLM_E2E_CLUSTER must be localkube or real, not {E2E_CLUSTER!r}")
CHART_NAMESPACE = "kubellm-system"
#: what the terminal summary reports: the cluster each e2e module ran on
CLUSTERS_SEEN: set[str] = set()
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
    #: the kubeconfig the operator uses (a ServiceAccount token's on a real cluster)
    kubeconfig: Path | None = None
    #: more KUBELLM_* settings, e.g. the gateway's demand URL (tests/e2e/test_gateway.py)
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        env = self.cluster.env(
            KUBELLM_CHILD_COMMAND=f"{sys.executable} -m kubellm",
            KUBELLM_CHILD_ENV=json.dumps(CHILD_ENV),
            KUBELLM_POLL_INTERVAL=self.poll_interval,
            KUBELLM_DRAIN_DELAY="2s",
            KUBELLM_WEBHOOK_HOST="127.0.0.1",
            **CHILD_ENV,
        )
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        env.update(self.extra_env)
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

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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
            except (AssertionError, LookupError, TypeError, AttributeError, ValueError) as exc:
                last = exc  # a field not written yet (None["x"], None.get) is "not yet" too
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

    def register_copy(self, model: str, of_version: str) -> str:
        """Register a new version of `model` from outside, as another pipeline would (a
        plain MLflow client), with the weights of `of_version`; answers its number. A
        rollout of it costs no training."""
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.mlflow_url)
        source = client.get_model_version(model, of_version)
        model_id = getattr(source, "model_id", None)
        if not model_id and str(source.source).startswith("models:/m-"):
            model_id = str(source.source).removeprefix("models:/")  # MLflow 3 logged model
        mv = client.create_model_version(
            model,
            source=str(source.source),
            run_id=source.run_id,
            model_id=model_id,
            await_creation_for=60,
        )
        return str(mv.version)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=self.mlflow_url).set_registered_model_alias(model, alias, version)

    def add_pod_fault(self, **fault: Any) -> dict[str, Any]:
        """A localkube pod fault on either cluster (the same kubelet runs the pods), e.g.
        `add_pod_fault(kind="http-errors", labels={...}, rate=0.3)`; answers it with its id."""
        return self.cluster.add_pod_fault(**fault)

    def clear_pod_faults(self) -> None:
        self.cluster.clear_pod_faults()


def e2e_manifest(
    name: str = "support-bot", *, max_steps: int = 30, p95_ms: int = 20000
) -> dict[str, Any]:
    """The tiny-pretrain example, shortened for tests (fewer steps, a short load test)."""
    import yaml

    obj = yaml.safe_load((REPO / "examples/tiny-pretrain.yaml").read_text())
    obj["metadata"]["name"] = name
    spec = obj["spec"]
    spec["model"]["registeredModel"] = name  # one registered model per LLM: no cross-talk
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


def install_chart(cluster: Cluster, *extra_values: str) -> None:
    """`helm install` the chart: CRD, RBAC and ServiceAccount, no operator pod."""
    from kubellm.tools.binaries import find

    helm = find("helm")
    assert helm, "helm not found: run `python -m kubellm.tools.binaries ensure`"
    # Pods here are processes on one host: the chart's gateway must bind its pod IP, not
    # 0.0.0.0, or it takes port 8000 from every other pod (the demo does the same).
    values = cluster.workdir / "chart-values.json"
    pod_ip = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    host = {"name": "KUBELLM_GATEWAY_HOST", "value": "$(POD_IP)"}
    values.write_text(json.dumps({"gateway": {"extraEnv": [pod_ip, host]}}))
    result = subprocess.run(
        [
            helm,
            "install",
            "kubellm",
            str(REPO / "charts/kubellm"),
            "--namespace",
            CHART_NAMESPACE,
            "--create-namespace",
            "--set",
            "replicaCount=0",
            "-f",
            str(values),
            *extra_values,
        ],
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"helm install failed: {result.stderr}"


def service_account_kubeconfig(cluster: Cluster, account: str, path: Path) -> Path:
    """A kubeconfig holding a token of ``account`` in the chart's namespace."""
    import yaml

    token = cluster.kubectl(
        "create", "token", account, "-n", CHART_NAMESPACE, "--duration=6h", check=True
    ).stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig_path.read_text())
    config["users"] = [{"name": account, "user": {"token": token}}]
    for ctx in config["contexts"]:
        ctx["context"]["user"] = account
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def operator_calls(cluster: Cluster) -> set[tuple[str, str, str]]:
    """(group, resource[/subresource], verb) of every API call the operator made.

    Read from the real apiserver's audit log, or from localkube's request log.
    """
    if cluster.control_plane == "real":
        return _audited_calls(cluster.workdir / "control-plane" / "logs" / "audit.log")
    return _localkube_calls((cluster.workdir / "localkube.log").read_text())


def _is_operator(user_agent: str) -> bool:
    return user_agent.startswith("kopf/") or user_agent.startswith("kubellm-operator")


def _audited_calls(path: Path) -> set[tuple[str, str, str]]:
    calls = set()
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if not _is_operator(event.get("userAgent", "")):
            continue
        ref = event.get("objectRef") or {}
        if not ref.get("resource"):
            continue  # discovery
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        calls.add((ref.get("apiGroup", ""), resource, event["verb"]))
    return calls


def _localkube_calls(log_text: str) -> set[tuple[str, str, str]]:
    calls = set()
    for line in log_text.splitlines():
        if " ua=" not in line or "localkube.apiserver" not in line:
            continue
        if not _is_operator(line.rsplit(" ua=", 1)[1]):
            continue
        method, path_qs = line.split(": ", 1)[1].split()[:2]
        path, _, query = path_qs.partition("?")
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 3:
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, rest = parts[1], parts[3:]
        else:
            continue  # discovery: /api, /apis, /apis/<g>/<v>, /version
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            rest = rest[2:]
        resource = rest[0] + (f"/{rest[2]}" if len(rest) >= 3 else "")
        named = len(rest) >= 2
        verb = {
            "POST": "create",
            "PATCH": "patch",
            "PUT": "update",
            "DELETE": "delete" if named else "deletecollection",
        }.get(method)
        if method == "GET":
            verb = "get" if named else ("watch" if "watch=" in query else "list")
        assert verb is not None, line
        calls.add((group, resource, verb))
    return calls


@pytest.fixture(scope="session")
def e2e_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The cluster KUBELLM_E2E_CLUSTER names, with the LLM CRD established."""
    workdir = tmp_path_factory.mktemp("e2e-kube")
    # the real node advertises 2 fake GPUs, so the real scheduler can be tested with them
    gpus = ("--gpus", "2") if E2E_CLUSTER == "real" else ()
    with local_cluster(
        workdir, time_scale=1.0, control_plane=E2E_CLUSTER, extra_args=gpus
    ) as cluster:
        CLUSTERS_SEEN.add(cluster.description)
        if cluster.control_plane == "real":
            install_chart(cluster)
        else:
            crd = REPO / "charts/kubellm/crds/llms.kubellm.dev.yaml"
            cluster.kubectl("apply", "-f", str(crd), check=True)
        cluster.kubectl(
            "wait",
            "--for=condition=Established",
            "crd/llms.kubellm.dev",
            "--timeout=30s",
            check=True,
        )
        yield cluster


@pytest.fixture(scope="session")
def e2e_system(e2e_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One MLflow server and one operator for the whole e2e session.

    Starting them is a large part of a module's cost (MLflow's server and the operator
    each import for seconds on 2 cores), so modules share them; each module's LLMs have
    names (and registered models) of their own, and `system` leaves the cluster clean
    between modules.
    """
    cluster = e2e_cluster
    workdir = tmp_path_factory.mktemp("e2e")
    with mlflow_server(workdir / "mlflow", webhooks=True) as mlflow_url:
        operator = Operator(cluster, mlflow_url, workdir / "operator.log")
        if cluster.control_plane == "real":
            operator.kubeconfig = service_account_kubeconfig(
                cluster, "kubellm", workdir / "operator.kubeconfig"
            )
        operator.start()
        try:
            yield System(cluster, mlflow_url, operator, workdir)
        finally:
            _delete_llms(cluster)
            operator.stop()
            os.environ.pop("KUBELLM_WEBHOOK_SECRET", None)


@pytest.fixture(scope="module")
def system(e2e_system: System) -> Iterator[System]:
    """The session's system for one module; afterwards the cluster is as the module found
    it: its LLMs deleted (their children go with them), pod faults cleared, and the
    operator running with the settings it had (a module may kill it, or restart it
    without webhooks)."""
    system = e2e_system
    operator = system.operator
    settings = (operator.webhooks, operator.poll_interval, dict(operator.extra_env))
    if not operator.running:
        operator.start()
    try:
        yield system
    finally:
        system.clear_pod_faults()
        if (operator.webhooks, operator.poll_interval, operator.extra_env) != settings:
            operator.stop()
            operator.webhooks, operator.poll_interval = settings[0], settings[1]
            operator.extra_env = dict(settings[2])
        if not operator.running:
            operator.start()
        # removed while the operator runs, so that it releases their finalizers
        _delete_llms(system.cluster)


def _delete_llms(cluster: Cluster) -> None:
    cluster.kubectl("delete", "llm", "--all", "--all-namespaces", "--wait=true", "--timeout=120s")


@dataclass
class Gateway:
    url: str
    admin_url: str
    proc: subprocess.Popen[bytes]

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError("the gateway exited; see gateway.log")
        try:
            return httpx.get(self.admin_url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


@contextlib.contextmanager
def gateway_process(cluster: Cluster, workdir: Path) -> Iterator[Gateway]:
    """`kubellm gateway` as a process in front of `cluster`'s LLMs, ready when yielded;
    its log in ``workdir/gateway.log``. Also what bench/rollback.py runs."""
    port, admin = free_port(), free_port()
    log = open(workdir / "gateway.log", "ab")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubellm",
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--admin-port",
            str(admin),
            "--hold-timeout",
            "240s",
        ],
        env=cluster.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    gw = Gateway(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}", proc)
    try:
        deadline = time.monotonic() + 60
        while not gw.ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not become ready; see {workdir}/gateway.log")
            time.sleep(0.5)
        yield gw
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def gateway(e2e_system: System) -> Iterator[Gateway]:
    """`kubellm gateway` as a process for the session (its figures are per LLM, and each
    module's LLMs are its own), and the operator restarted to read its demand."""
    system = e2e_system
    with gateway_process(system.cluster, system.workdir) as gw:
        system.operator.stop()
        system.operator.extra_env["KUBELLM_GATEWAY_DEMAND_URL"] = gw.admin_url + "/demand"
        system.operator.start()
        try:
            yield gw
        finally:
            system.operator.extra_env.pop("KUBELLM_GATEWAY_DEMAND_URL", None)


def kubectl_table(text: str) -> dict[str, str]:
    """kubectl's table, read by the header's column offsets (empty cells stay empty)."""
    header, row = text.splitlines()[:2]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[i - 1] == " ")]
    cells = {}
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(row)
        cells[header[start:end].strip()] = row[start:end].strip()
    return cells


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for description in sorted(CLUSTERS_SEEN):
        reports = terminalreporter.stats.get("passed", [])
        passed = sum(1 for r in reports if "tests/e2e/" in getattr(r, "nodeid", ""))
        terminalreporter.write_line(f"e2e on {description}: {passed} e2e tests passed")
