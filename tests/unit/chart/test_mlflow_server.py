"""The optional MLflow tracking server: off by default, lean, sqlite on a PVC or external DB."""

from __future__ import annotations

import base64
from typing import Any

from tests.unit.chart.conftest import NAMESPACE, RELEASE, Renderer, Rendering

SERVER = f"{RELEASE}-mlflow"


def _container(rendering: Rendering) -> dict[str, Any]:
    (container,) = rendering.one("Deployment", SERVER)["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _args(rendering: Rendering) -> dict[str, str]:
    args = _container(rendering)["args"]
    return dict(a.removeprefix("--").partition("=")[::2] for a in args)


def _env(rendering: Rendering) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in _container(rendering)["env"]}


def test_no_server_unless_enabled(renderer: Renderer) -> None:
    rendering = renderer.render("default")
    assert [d for d in rendering.docs if SERVER in d["metadata"]["name"]] == []


def test_server_runs_lean_one_worker_without_job_runner(renderer: Renderer) -> None:
    rendering = renderer.render("mlflow-sqlite")
    container = _container(rendering)
    assert container["command"] == ["mlflow", "server"]
    args = _args(rendering)
    assert args["workers"] == "1" and args["host"] == "0.0.0.0" and args["port"] == "5000"
    assert _env(rendering)["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]["value"] == "false"
    deployment = rendering.one("Deployment", SERVER)
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_allowed_hosts_admit_the_service_names_and_port_forward(renderer: Renderer) -> None:
    hosts = _args(renderer.render("mlflow-sqlite"))["allowed-hosts"].split(",")
    fqdn = f"{SERVER}.{NAMESPACE}.svc.cluster.local"
    for host in (SERVER, f"{SERVER}.{NAMESPACE}", f"{SERVER}.{NAMESPACE}.svc", fqdn, "localhost"):
        assert host in hosts and f"{host}:*" in hosts


def test_sqlite_and_artifacts_live_on_the_claim(renderer: Renderer) -> None:
    rendering = renderer.render("mlflow-sqlite")
    args = _args(rendering)
    assert args["backend-store-uri"] == "sqlite:////mlflow/mlflow.db"
    assert args["artifacts-destination"] == "/mlflow/artifacts"
    assert "serve-artifacts" in args
    claim = rendering.one("PersistentVolumeClaim", SERVER)
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    pod = rendering.one("Deployment", SERVER)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in _container(rendering)["volumeMounts"]}
    assert volumes[mounts["/mlflow"]]["persistentVolumeClaim"] == {"claimName": SERVER}


def test_external_database_comes_from_a_secret_and_needs_no_claim(renderer: Renderer) -> None:
    rendering = renderer.render("mlflow-external-db")
    args = _args(rendering)
    assert "backend-store-uri" not in args
    assert args["artifacts-destination"] == "s3://models/mlflow"
    env = _env(rendering)
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"] == {
        "name": "mlflow-db",
        "key": "uri",
    }
    assert env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]["valueFrom"]["secretKeyRef"]["name"] == (
        "mlflow-fernet"
    )
    assert rendering.of_kind("PersistentVolumeClaim") == []
    secrets = [s["metadata"]["name"] for s in rendering.of_kind("Secret")]
    assert secrets == [
        f"{SERVER}-admin",
        f"{SERVER}-auth",
        f"{RELEASE}-promotion",
        f"{RELEASE}-webhook",
    ]


def test_generated_webhook_encryption_key_is_a_fernet_key(renderer: Renderer) -> None:
    rendering = renderer.render("mlflow-sqlite")
    ref = _env(rendering)["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]["valueFrom"]["secretKeyRef"]
    key = base64.b64decode(rendering.one("Secret", ref["name"])["data"][ref["key"]])
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert not {b"+", b"/"} & set(key[i : i + 1] for i in range(len(key)))


def test_webhooks_may_reach_the_operator_inside_the_cluster(renderer: Renderer) -> None:
    env = _env(renderer.render("mlflow-sqlite"))
    assert env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"]["value"] == "true"
    assert "http" in env["MLFLOW_WEBHOOK_ALLOWED_SCHEMES"]["value"].split(",")


def test_server_flags_and_environment_are_ones_mlflow_knows(renderer: Renderer) -> None:
    """Parse the rendered argv with MLflow's own CLI: a renamed flag fails here, not in a pod."""
    from mlflow import environment_variables
    from mlflow.cli import server

    for name in ("mlflow-sqlite", "mlflow-external-db"):
        container = _container(renderer.render(name))
        server.make_context("server", list(container["args"]))
        known = {
            getattr(environment_variables, attr).name
            for attr in dir(environment_variables)
            if hasattr(getattr(environment_variables, attr), "name")
        }
        known |= {p.envvar for p in server.params if isinstance(p.envvar, str)}
        for env in container["env"]:
            if env["name"] != "HOME":
                assert env["name"] in known, env["name"]
