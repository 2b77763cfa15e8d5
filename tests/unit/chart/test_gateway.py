"""The gateway in the chart: one per installation, two Services, read-only identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.unit.chart.conftest import CHART, NAMESPACE, RELEASE, Rendering, run_helm

GATEWAY = f"{RELEASE}-gateway"
DEMAND_URL = f"http://{GATEWAY}-admin.{NAMESPACE}.svc.cluster.local:9090/demand"


def _container(rendering: Rendering) -> dict[str, Any]:
    (container,) = rendering.one("Deployment", GATEWAY)["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_gateway_has_a_client_service_and_a_headless_admin_service(rendering: Rendering) -> None:
    selector = rendering.one("Deployment", GATEWAY)["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "gateway"
    client = rendering.one("Service", GATEWAY)["spec"]
    assert client["selector"] == selector
    assert [(p["port"], p["targetPort"]) for p in client["ports"]] == [(80, "http")]
    admin = rendering.one("Service", f"{GATEWAY}-admin")["spec"]
    assert admin["clusterIP"] == "None" and admin["selector"] == selector
    assert [(p["port"], p["targetPort"]) for p in admin["ports"]] == [(9090, "admin")]
    ports = {p["name"]: p["containerPort"] for p in _container(rendering)["ports"]}
    assert ports == {"http": 8000, "admin": 9090}


def test_operator_reads_demand_from_the_admin_service(rendering: Rendering) -> None:
    assert rendering.operator_env["KUBELLM_GATEWAY_DEMAND_URL"]["value"] == DEMAND_URL


def test_gateway_fronts_the_namespaces_the_operator_watches(rendering: Rendering) -> None:
    env = _env(_container(rendering))
    assert env["KUBELLM_GATEWAY_NAMESPACES"] == ",".join(
        rendering.values.get("watchNamespaces", [])
    )
    assert (
        env["KUBELLM_GATEWAY_NAMESPACES"] == rendering.operator_env["KUBELLM_NAMESPACES"]["value"]
    )


def test_gateway_is_hardened_and_holds_only_its_own_expiring_token(rendering: Rendering) -> None:
    pod = rendering.one("Deployment", GATEWAY)["spec"]["template"]["spec"]
    container = _container(rendering)
    assert container["securityContext"] == rendering.operator_container["securityContext"]
    assert pod["serviceAccountName"] == GATEWAY
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    token = volumes[mounts["/var/run/secrets/kubernetes.io/serviceaccount"]]["projected"]
    expiring = next(
        s["serviceAccountToken"] for s in token["sources"] if "serviceAccountToken" in s
    )
    assert expiring["expirationSeconds"] <= 3607
    assert "emptyDir" in volumes[mounts["/tmp"]]
    text = str(pod)
    assert "secretKeyRef" not in text and "'secret'" not in text  # no Secret reaches it
    assert container["command"] == ["kubellm", "gateway"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}


def _render(values: dict[str, Any], tmp: Path) -> list[dict[str, Any]]:
    result = run_helm("template", RELEASE, str(CHART), "-n", NAMESPACE, values=values, tmp=tmp)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_gateway_settings_reach_its_environment(tmp_path: Path) -> None:
    values = {
        "gateway": {
            "holdTimeout": "5m",
            "maxHeldRequests": 32,
            "connectTimeout": "1s",
            "replicaCount": 2,
            "command": ["/opt/venv/bin/python", "-m", "kubellm", "gateway"],
        }
    }
    docs = _render(values, tmp_path)
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == GATEWAY)
    assert dep["spec"]["replicas"] == 2
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    env = _env(container)
    assert (env["KUBELLM_GATEWAY_HOLD_TIMEOUT"], env["KUBELLM_GATEWAY_MAX_HELD"]) == ("5m", "32")
    assert env["KUBELLM_GATEWAY_CONNECT_TIMEOUT"] == "1s"
    assert container["command"] == ["/opt/venv/bin/python", "-m", "kubellm", "gateway"]


def test_without_the_gateway_nothing_of_it_renders_and_the_operator_polls_nothing(
    tmp_path: Path,
) -> None:
    docs = _render({"gateway": {"enabled": False}}, tmp_path)
    assert not [d for d in docs if GATEWAY in d["metadata"]["name"]]
    operator = next(d for d in docs if d["kind"] == "Deployment")
    env = {e["name"] for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "KUBELLM_GATEWAY_DEMAND_URL" not in env


def test_bad_gateway_values_are_refused_by_the_schema(tmp_path: Path) -> None:
    for bad in ({"holdTimeout": "forever"}, {"maxHeldRequests": 0}, {"replicas": 2}):
        result = run_helm("template", RELEASE, str(CHART), values={"gateway": bad}, tmp=tmp_path)
        assert result.returncode != 0, bad
