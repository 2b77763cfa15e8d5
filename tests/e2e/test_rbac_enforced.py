"""On a real control plane the chart's RBAC is enforced, not only audited.

The operator runs with a ServiceAccount bound to the chart's ClusterRole minus one verb it
needs (`create` on Jobs). The real authorizer refuses that call: the audit log shows the
403, no training Job exists, and the operator keeps running. localkube stores RBAC objects
but does not authorise requests (see docs/emulator.md), so this runs on the real cluster.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localkube.testing.localkube import Cluster
from localkube.testing.mlflow import mlflow_server

from .conftest import (
    CHART_NAMESPACE,
    E2E_CLUSTER,
    Operator,
    System,
    e2e_manifest,
    service_account_kubeconfig,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        E2E_CLUSTER != "real", reason="localkube does not authorise requests (documented)"
    ),
]

ACCOUNT = "kubellm-without-job-create"
NAMESPACE = "rbac-probe"


def _kubectl(cluster: Cluster, *args: str, stdin: str | None = None) -> str:
    result = cluster.kubectl(*args, input=stdin, timeout=60)
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return str(result.stdout)


def _role_without_job_create(cluster: Cluster) -> dict[str, Any]:
    role = json.loads(_kubectl(cluster, "get", "clusterrole", "kubellm", "-o", "json"))
    rules = []
    removed = False
    for rule in role["rules"]:
        if "batch" in rule.get("apiGroups", []) and "jobs" in rule.get("resources", []):
            assert "create" in rule["verbs"], "the chart must grant create on jobs"
            rule = {**rule, "verbs": [v for v in rule["verbs"] if v != "create"]}
            removed = True
        rules.append(rule)
    assert removed
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": ACCOUNT},
        "rules": rules,
    }


@pytest.fixture(scope="module")
def restricted_operator(
    system: System, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Operator, Path]]:
    cluster = system.cluster
    # the session's operator pauses (`system` starts it again after the module): with
    # the chart's full role it would create the Job this test expects to be refused
    system.operator.stop()
    workdir = tmp_path_factory.mktemp("rbac")
    _kubectl(cluster, "create", "namespace", NAMESPACE)
    _kubectl(cluster, "create", "serviceaccount", ACCOUNT, "-n", CHART_NAMESPACE)
    _kubectl(cluster, "apply", "-f", "-", stdin=json.dumps(_role_without_job_create(cluster)))
    _kubectl(
        cluster,
        "create",
        "clusterrolebinding",
        ACCOUNT,
        f"--clusterrole={ACCOUNT}",
        f"--serviceaccount={CHART_NAMESPACE}:{ACCOUNT}",
    )
    with mlflow_server(workdir / "mlflow", webhooks=False) as mlflow_url:
        operator = Operator(cluster, mlflow_url, workdir / "operator.log", webhooks=False)
        operator.kubeconfig = service_account_kubeconfig(
            cluster, ACCOUNT, workdir / "operator.kubeconfig"
        )
        operator.start()
        try:
            yield operator, cluster.workdir / "control-plane" / "logs" / "audit.log"
        finally:
            operator.stop()


def _refused_job_creates(audit_log: Path) -> list[dict[str, Any]]:
    user = f"system:serviceaccount:{CHART_NAMESPACE}:{ACCOUNT}"
    refused = []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if (
            event.get("user", {}).get("username") == user
            and event.get("verb") == "create"
            and ref.get("resource") == "jobs"
            and ref.get("namespace") == NAMESPACE
        ):
            refused.append(event)
    return refused


def test_operator_without_job_create_is_refused_by_the_real_authorizer(
    e2e_cluster: Cluster, restricted_operator: tuple[Operator, Path]
) -> None:
    operator, audit_log = restricted_operator
    manifest = e2e_manifest("rbac-probe")
    manifest["metadata"]["namespace"] = NAMESPACE
    _kubectl(e2e_cluster, "apply", "-f", "-", stdin=json.dumps(manifest))
    deadline = time.monotonic() + 90
    attempts: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not attempts:
        attempts = _refused_job_creates(audit_log)
        time.sleep(1)
    assert attempts, f"the operator never tried to create the training Job; see {operator.log_path}"
    codes = {a.get("responseStatus", {}).get("code") for a in attempts}
    assert codes == {403}, f"expected only 403 answers, got {codes}"
    jobs = _kubectl(e2e_cluster, "get", "jobs", "-n", NAMESPACE, "-o", "name")
    assert jobs.strip() == "", jobs
    assert operator.proc is not None and operator.proc.poll() is None, "operator crashed"
    # the same token may still do what the role grants: the LLM's status is written
    status = (
        json.loads(
            _kubectl(e2e_cluster, "get", "llm", "rbac-probe", "-n", NAMESPACE, "-o", "json")
        ).get("status")
        or {}
    )
    assert status, "the operator wrote no status with the verbs it still has"
