"""Kubeconfig files for the real control plane: certificates or a bearer token, embedded.

Embedding the certificate data (instead of pointing at files) keeps each kubeconfig
self-contained, so it can be copied into a pod's directory or handed to a test as is.
Written as JSON, which every YAML reader accepts, with mode 0600: they are credentials.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from localkube.realkube.pki import Credentials

__all__ = ["kubeconfig_dict", "write_kubeconfig", "write_token_kubeconfig"]


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig_dict(
    server: str, ca_cert: Path, user: dict[str, Any], name: str = "realkube"
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "realkube",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": "realkube", "user": name}}],
        "current-context": name,
    }


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def write_kubeconfig(
    path: Path, server: str, ca_cert: Path, creds: Credentials, name: str = "admin"
) -> None:
    """A kubeconfig that authenticates with a client certificate."""
    user = {"client-certificate-data": _b64(creds.cert), "client-key-data": _b64(creds.key)}
    _write(path, kubeconfig_dict(server, ca_cert, user, name))


def write_token_kubeconfig(
    path: Path, server: str, ca_cert: Path, token: str, name: str = "serviceaccount"
) -> None:
    """A kubeconfig that authenticates with a bearer token (a service account's)."""
    _write(path, kubeconfig_dict(server, ca_cert, {"token": token}, name))
