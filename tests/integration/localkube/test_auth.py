"""localkube's API needs the kubeconfig's bearer token; Secret files are private to the user.

Before, anyone on the machine could list every Secret or POST a Pod that runs a command as
the user running localkube. Now every request without `Authorization: Bearer <token>` gets
the 401 Status of a kube-apiserver, the token lives in a 0600 kubeconfig (with the CA of the
server's certificate: kubectl sends tokens to HTTPS servers only), and kubectl, the Python
client and localkube's own controllers keep working from it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from localkube.testing.localkube import Cluster

from .controllers_support import apply, get, needs_kubectl, wait_for

pytestmark = needs_kubectl

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "intruder"},
    "spec": {"containers": [{"name": "c", "image": "x", "command": ["id"]}]},
}


def call(cluster: Cluster, method: str, path: str, body: Any = None, token: str | None = None):
    """(status, decoded body) of one request, with the given token or none."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(cluster.url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10, context=cluster.ssl_context()) as resp:
            return resp.status, _decode(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decode(exc.read())


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode()


def test_unauthenticated_get_of_secrets_is_refused(localkube: Cluster):
    code, body = call(localkube, "GET", "/api/v1/secrets")
    assert code == 401
    assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
    code, _ = call(localkube, "GET", "/api/v1/secrets", token="not-the-token")
    assert code == 401
    code, body = call(localkube, "GET", "/api/v1/secrets", token=localkube.token)
    assert code == 200 and body["kind"] == "SecretList"


def test_unauthenticated_post_of_a_pod_is_refused_and_runs_nothing(localkube: Cluster, ns: str):
    code, body = call(localkube, "POST", f"/api/v1/namespaces/{ns}/pods", POD)
    assert code == 401 and body["code"] == 401
    code, _ = call(localkube, "POST", "/_localkube/pod-faults", {"kind": "crash"})
    assert code == 401
    assert get(localkube, f"/api/v1/namespaces/{ns}/pods/intruder") == {}


def test_health_and_version_stay_open(localkube: Cluster):
    assert call(localkube, "GET", "/_localkube/healthz")[0] == 200
    code, body = call(localkube, "GET", "/version")
    assert code == 200 and body["major"] == "1"


def test_the_kubeconfig_is_private_and_its_clients_work(localkube: Cluster, ns: str):
    assert localkube.kubeconfig_path.stat().st_mode & 0o777 == 0o600
    assert localkube.url.startswith("https://127.") and len(localkube.token) >= 40
    r = localkube.kubectl("get", "pods", "-n", ns)
    assert r.returncode == 0, r.stderr
    from kubernetes import client

    api = client.CoreV1Api(localkube.load_kube_config())
    assert api.read_namespace(ns).metadata.name == ns


def test_a_non_loopback_host_is_refused_without_the_flag(tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubellm",
            "localkube",
            "up",
            "--workdir",
            str(tmp_path),
            "--host",
            "0.0.0.0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to serve the API on 0.0.0.0" in result.stderr
    assert "--allow-non-loopback" in result.stderr
    assert not (tmp_path / "localkube.json").exists()


def test_secret_volume_files_are_readable_by_the_user_only(localkube: Cluster, ns: str):
    apply(
        localkube,
        ns,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "stringData": {"password": "hunter2"},
        },
    )
    apply(
        localkube,
        ns,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg"},
            "data": {"mode": "fast"},
        },
    )
    script = "stat -c '%a' /etc/creds/password /etc/creds /etc/cfg/mode; cat /etc/creds/password"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader"},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [
                {"name": "creds", "secret": {"secretName": "creds"}},
                {"name": "cfg", "configMap": {"name": "cfg"}},
            ],
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "command": ["sh", "-c", script],
                    "volumeMounts": [
                        {"name": "creds", "mountPath": "/etc/creds"},
                        {"name": "cfg", "mountPath": "/etc/cfg"},
                    ],
                }
            ],
        },
    }
    apply(localkube, ns, pod)
    wait_for(
        lambda: (
            get(localkube, f"/api/v1/namespaces/{ns}/pods/reader").get("status", {}).get("phase")
            in ("Succeeded", "Failed")
        ),
        what="reader finished",
    )
    out = localkube.kubectl("logs", "reader", "-n", ns).stdout.split()
    assert out == ["600", "700", "644", "hunter2"], out
