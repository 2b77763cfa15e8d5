"""The operator Deployment: hardened, started as a plain argv, configured through KUBELLM_*."""

from __future__ import annotations

import base64
import json

import yaml

from tests.unit.chart.conftest import CHART, NAMESPACE, RELEASE, TEAMS, Renderer, Rendering

APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]


def _pod_spec(rendering: Rendering) -> dict:
    return rendering.operator["spec"]["template"]["spec"]


def test_operator_container_is_hardened(rendering: Rendering) -> None:
    pod = _pod_spec(rendering)
    container = rendering.operator_container
    security = container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert security["runAsNonRoot"] is True and security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # The read-only root still has a writable /tmp.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_operator_starts_as_a_plain_argv_without_a_shell(rendering: Rendering) -> None:
    container = rendering.operator_container
    expected = rendering.values.get("image", {}).get("command", ["kubellm", "operator"])
    assert container["command"] == expected
    assert container["command"][0] not in {"sh", "bash", "/bin/sh", "/bin/bash"}
    assert "args" not in container


def test_probes_hit_kopf_liveness_endpoint_on_the_liveness_port(rendering: Rendering) -> None:
    container = rendering.operator_container
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = rendering.operator_env
    assert ports == {
        "http": int(env["KUBELLM_WEBHOOK_PORT"]["value"]),
        "liveness": int(env["KUBELLM_LIVENESS_PORT"]["value"]),
    }
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "liveness"}


def test_service_exposes_webhook_and_metrics_on_the_webhook_container_port(
    rendering: Rendering,
) -> None:
    service = rendering.one("Service", RELEASE)
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert set(ports) == {"webhook", "metrics"}
    assert {p["targetPort"] for p in ports.values()} == {"http"}
    labels = rendering.operator["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_default_settings_reach_the_operator_environment(renderer: Renderer) -> None:
    env = renderer.render("default").operator_env
    assert {name: e.get("value") for name, e in env.items() if "value" in e} == {
        "KUBELLM_NAMESPACES": "",
        "KUBELLM_IMAGE": f"ghcr.io/kubellm/kubellm:{APP_VERSION}",
        "KUBELLM_CUDA_IMAGE": f"ghcr.io/kubellm/kubellm:{APP_VERSION}-cuda",
        "KUBELLM_GPU_RESOURCE": "nvidia.com/gpu",
        "KUBELLM_DEFAULT_NODE_SELECTOR": "{}",
        "KUBELLM_DEFAULT_TOLERATIONS": "[]",
        "KUBELLM_IMAGE_ALLOWLIST": "",
        "KUBELLM_WORKLOAD_UID": "10001",
        "KUBELLM_TMP_SIZE_LIMIT": "2Gi",
        "KUBELLM_POLL_INTERVAL": "30s",
        "KUBELLM_WEBHOOK_PORT": "8080",
        "KUBELLM_LIVENESS_PORT": "8081",
        "KUBELLM_GATEWAY_DEMAND_URL": (
            "http://kubellm-gateway-admin.kubellm-system.svc.cluster.local:9090/demand"
        ),
    }
    assert "KUBELLM_MLFLOW_TRACKING_URI" not in env
    assert "envFrom" not in renderer.render("default").operator_container


def test_workload_node_defaults_pass_as_json(renderer: Renderer) -> None:
    rendering = renderer.render("gpu-node-defaults")
    env = rendering.operator_env
    workloads = rendering.values["workloads"]
    assert env["KUBELLM_GPU_RESOURCE"]["value"] == "amd.com/gpu"
    assert json.loads(env["KUBELLM_DEFAULT_NODE_SELECTOR"]["value"]) == workloads["nodeSelector"]
    assert json.loads(env["KUBELLM_DEFAULT_TOLERATIONS"]["value"]) == workloads["tolerations"]


def test_watched_namespaces_are_a_comma_list(renderer: Renderer) -> None:
    env = renderer.render("namespaced-rbac").operator_env
    assert env["KUBELLM_NAMESPACES"]["value"] == ",".join(TEAMS)


def test_tracking_uri_is_explicit_or_the_in_chart_server(renderer: Renderer) -> None:
    explicit = renderer.render("mlflow-external-uri")
    assert explicit.operator_env["KUBELLM_MLFLOW_TRACKING_URI"]["value"] == (
        "https://mlflow.example.com"
    )
    assert explicit.operator_container["envFrom"] == [{"secretRef": {"name": "mlflow-creds"}}]
    in_chart = renderer.render("mlflow-sqlite").operator_env["KUBELLM_MLFLOW_TRACKING_URI"]
    assert in_chart["value"] == f"http://{RELEASE}-mlflow.{NAMESPACE}.svc.cluster.local:5000"


def test_local_demo_overrides_command_pull_policy_and_extra_env(renderer: Renderer) -> None:
    rendering = renderer.render("local-demo")
    container = rendering.operator_container
    assert container["imagePullPolicy"] == "Never"
    assert container["command"] == ["/opt/venv/bin/python", "-m", "kubellm", "operator"]
    assert rendering.operator_env["KUBELLM_DEMO"] == {"name": "KUBELLM_DEMO", "value": "1"}
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names))


def _webhook_ref(rendering: Rendering) -> dict | None:
    env = rendering.operator_env.get("KUBELLM_WEBHOOK_SECRET")
    return None if env is None else env["valueFrom"]["secretKeyRef"]


def test_generated_webhook_secret_is_created_and_referenced(renderer: Renderer) -> None:
    rendering = renderer.render("default")
    ref = _webhook_ref(rendering)
    assert ref == {"name": f"{RELEASE}-webhook", "key": "webhook-secret"}
    secret = rendering.one("Secret", ref["name"])
    assert len(base64.b64decode(secret["data"][ref["key"]])) == 40


def test_webhook_secret_from_values_is_stored(renderer: Renderer) -> None:
    rendering = renderer.render("webhook-secret-value")
    ref = _webhook_ref(rendering)
    assert ref is not None
    data = rendering.one("Secret", ref["name"])["data"][ref["key"]]
    assert base64.b64decode(data).decode() == "s3cr3t-from-values"


def test_existing_webhook_secret_is_referenced_not_created(renderer: Renderer) -> None:
    rendering = renderer.render("webhook-existing-secret")
    assert _webhook_ref(rendering) == {"name": "my-webhook", "key": "token"}
    assert [s["metadata"]["name"] for s in rendering.of_kind("Secret")] == [f"{RELEASE}-promotion"]


def test_disabled_webhook_needs_no_secret(renderer: Renderer) -> None:
    rendering = renderer.render("webhook-disabled")
    assert _webhook_ref(rendering) is None
    assert [s["metadata"]["name"] for s in rendering.of_kind("Secret")] == [f"{RELEASE}-promotion"]


def test_one_replica_runs_alone_and_is_replaced_not_overlapped(renderer: Renderer) -> None:
    rendering = renderer.render("default")
    assert rendering.operator["spec"]["replicas"] == 1
    assert rendering.operator["spec"]["strategy"] == {"type": "Recreate"}
    assert "KUBELLM_PEERING" not in rendering.operator_env
    for kind in ("ClusterKopfPeering", "KopfPeering", "PodDisruptionBudget"):
        assert rendering.of_kind(kind) == []


def test_more_replicas_turn_on_cluster_wide_peering(renderer: Renderer) -> None:
    rendering = renderer.render("peering")
    assert rendering.operator["spec"]["replicas"] == 2
    peering = rendering.operator_env["KUBELLM_PEERING"]["value"]
    assert rendering.one("ClusterKopfPeering", peering)
    assert rendering.of_kind("KopfPeering") == []
    assert rendering.operator["spec"]["strategy"]["type"] == "RollingUpdate"
    assert rendering.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_peering_with_watched_namespaces_uses_one_object_per_namespace(
    renderer: Renderer,
) -> None:
    rendering = renderer.render("peering-namespaced")
    peering = rendering.operator_env["KUBELLM_PEERING"]["value"]
    objects = rendering.of_kind("KopfPeering")
    assert sorted(o["metadata"]["namespace"] for o in objects) == sorted(TEAMS)
    assert {o["metadata"]["name"] for o in objects} == {peering}
    assert rendering.of_kind("ClusterKopfPeering") == []
