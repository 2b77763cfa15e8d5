"""The chart's security settings (issue 12): the promotion key, and what each pod may hold."""

from __future__ import annotations

import base64
from typing import Any

from localkube.testing.podsecurity import restricted_violations, workload_pod_spec
from tests.unit.chart.conftest import NAMESPACE, RELEASE, TEAMS, Renderer, Rendering


def test_promotion_key_is_generated_kept_and_given_to_the_operator_only(
    renderer: Renderer,
) -> None:
    rendering = renderer.render("default")
    secret = rendering.one("Secret", f"{RELEASE}-promotion")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    key = base64.b64decode(secret["data"]["promotion-key"]).decode()
    assert len(key) == 48
    env = rendering.operator_env["KUBELLM_PROMOTION_KEY"]
    assert env["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-promotion",
        "key": "promotion-key",
    }


def _pods(rendering: Rendering) -> list[dict[str, object]]:
    return [
        d["spec"]["template"]["spec"]
        for d in rendering.docs
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ]


def test_no_pod_but_the_operator_reads_the_promotion_key(rendering: Rendering) -> None:
    for pod in _pods(rendering):
        text = str(pod)
        if "KUBELLM_PROMOTION_KEY" in text or f"{RELEASE}-promotion" in text:
            assert pod is rendering.operator["spec"]["template"]["spec"]


# -- item 4: the chart's pods, NetworkPolicies, MLflow authentication ---------------------


def test_chart_pods_meet_the_restricted_pod_security_standard(rendering: Rendering) -> None:
    for doc in rendering.docs:
        pod = workload_pod_spec(doc)
        if pod is None:
            continue
        name = f"{rendering.name}: {doc['kind']} {doc['metadata']['name']}"
        assert restricted_violations(pod) == [], name
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, name
        if doc["metadata"]["name"] != RELEASE:  # only the operator talks to the API
            assert pod["automountServiceAccountToken"] is False, name


def _policies(rendering: Rendering) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d["spec"]
        for d in rendering.of_kind("NetworkPolicy")
    }


def _egress_ports(spec: dict[str, Any]) -> set[int]:
    return {p["port"] for rule in spec.get("egress", []) for p in rule.get("ports", [])}


def test_operator_policy_admits_only_its_ports_and_reaches_dns_api_and_mlflow(
    renderer: Renderer,
) -> None:
    spec = _policies(renderer.render("mlflow-external-uri"))[(NAMESPACE, f"{RELEASE}-operator")]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    ingress = [p["port"] for rule in spec["ingress"] for p in rule["ports"]]
    assert sorted(ingress) == ["http", "liveness"]
    # https://mlflow.example.com -> 443; 9090: the gateway's /demand
    assert _egress_ports(spec) == {53, 443, 6443, 9090}
    to_gateway = next(r for r in spec["egress"] if 9090 in {p["port"] for p in r["ports"]})
    assert to_gateway["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "gateway"
    )
    labels = renderer.render("default").operator["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= labels.items()
    local = _policies(renderer.render("local-demo"))[(NAMESPACE, f"{RELEASE}-operator")]
    assert _egress_ports(local) == {53, 443, 6443, 5000, 9090}


def test_serving_policy_per_namespace_allows_the_serving_port_and_the_model_download(
    renderer: Renderer,
) -> None:
    policies = _policies(renderer.render("namespaced-rbac"))
    for team in TEAMS:
        spec = policies[(team, f"{RELEASE}-serving")]
        assert spec["podSelector"] == {"matchLabels": {"kubellm.dev/component": "serving"}}
        assert spec["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
        assert _egress_ports(spec) == {53}  # no MLflow configured: DNS only
    assert not any(ns in TEAMS for ns, _ in _policies(renderer.render("default")))
    custom = _policies(renderer.render("hardening-options"))
    assert [ns for ns, name in custom if name == f"{RELEASE}-serving"] == ["team-a"]
    spec = custom[("team-a", f"{RELEASE}-serving")]
    assert spec["ingress"][0]["from"] == [{"namespaceSelector": {"matchLabels": {"team": "apps"}}}]
    assert _egress_ports(spec) == {53, 5000, 443}
    to_mlflow = next(r for r in spec["egress"] if "to" in r)
    assert to_mlflow["to"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}
    }


def test_mlflow_server_admits_the_operator_and_kubellm_workloads_only(renderer: Renderer) -> None:
    spec = _policies(renderer.render("mlflow-sqlite"))[(NAMESPACE, f"{RELEASE}-mlflow")]
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    peers = rule["from"]
    assert peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "operator"
    assert peers[1] == {
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "kubellm"}},
    }
    assert len(peers) == 2


def test_no_network_policies_when_disabled(renderer: Renderer) -> None:
    assert renderer.render("network-policy-disabled").of_kind("NetworkPolicy") == []


def _mlflow(rendering: Rendering) -> dict[str, Any]:
    (container,) = rendering.one("Deployment", f"{RELEASE}-mlflow")["spec"]["template"]["spec"][
        "containers"
    ]
    return dict(container)


def test_in_chart_mlflow_requires_authentication(renderer: Renderer) -> None:
    rendering = renderer.render("mlflow-sqlite")
    container = _mlflow(rendering)
    assert "--app-name=basic-auth" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    admin = f"{RELEASE}-mlflow-admin"
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": admin,
        "key": "MLFLOW_TRACKING_PASSWORD",
    }
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == (
        f"{RELEASE}-mlflow-auth"
    )
    ini = rendering.one("ConfigMap", f"{RELEASE}-mlflow-auth")["data"]["basic_auth.ini"]
    assert "default_permission = NO_PERMISSIONS" in ini
    assert "database_uri = sqlite:////mlflow/basic_auth.db" in ini  # on the claim
    assert env["MLFLOW_AUTH_CONFIG_PATH"]["value"] == "/etc/mlflow-auth/basic_auth.ini"
    secret = rendering.one("Secret", admin)["data"]
    assert base64.b64decode(secret["MLFLOW_TRACKING_USERNAME"]) == b"admin"
    assert len(base64.b64decode(secret["MLFLOW_TRACKING_PASSWORD"])) == 32
    # the operator signs in as the admin
    assert rendering.operator_container["envFrom"] == [{"secretRef": {"name": admin}}]


def test_operator_uses_named_credentials_over_the_in_chart_admin(renderer: Renderer) -> None:
    external = renderer.render("mlflow-external-db")
    assert external.operator_container["envFrom"] == [{"secretRef": {"name": "mlflow-credentials"}}]
    custom = renderer.render("hardening-options")
    assert custom.operator_container["envFrom"] == [{"secretRef": {"name": "mlflow-root"}}]
    assert not any(s["metadata"]["name"].endswith("-admin") for s in custom.of_kind("Secret"))
    open_server = renderer.render("mlflow-without-auth")
    assert "--app-name=basic-auth" not in _mlflow(open_server)["args"]
    assert "envFrom" not in open_server.operator_container


def test_image_allowlist_reaches_the_operator(renderer: Renderer) -> None:
    env = renderer.render("hardening-options").operator_env
    assert env["KUBELLM_IMAGE_ALLOWLIST"]["value"] == "registry.example.com/ml/*,vllm/*"
