"""Fixtures for the API-server integration tests: an in-process server plus kubectl env.

The server runs on its own loop in a thread, on a free loopback port; each test module
gets one server (module scope) and its own kubeconfig and `KUBECACHEDIR`.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from localkube.apiserver.threaded import ThreadedApiServer
from localkube.testing.localkube import kubectl_binary

# kubectl 1.35, as Cluster.kubectl runs it (KUBELLM_KUBECTL overrides), not whatever is on PATH
KUBECTL: str | None = kubectl_binary()
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Phase, type: string, jsonPath: .status.phase}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            x-kubernetes-validations:
            - rule: "self.max >= self.min"
              message: "max must be >= min"
              fieldPath: ".max"
            properties:
              size: {type: integer, minimum: 1, maximum: 10, description: "How big."}
              color: {type: string, enum: [red, blue], default: red}
              min: {type: integer, default: 0}
              max: {type: integer, default: 5}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"""

WIDGET = """
apiVersion: example.com/v1
kind: Widget
metadata:
  name: {name}
  labels: {{app: demo}}
spec:
  size: {size}
"""


@dataclass
class Kube:
    """kubectl bound to one server, plus the server itself."""

    server: ThreadedApiServer
    env: dict[str, str]
    tmp: Path

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 30, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        result = subprocess.run(
            [KUBECTL, *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        assert KUBECTL is not None
        return subprocess.Popen(
            [KUBECTL, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def api_client(self) -> Any:
        from kubernetes import config

        return config.new_client_from_config(config_file=self.env["KUBECONFIG"])


def _alive_since(proc: Any, started: float) -> bool:
    try:
        return bool(
            proc.is_running()
            and proc.status() != psutil.STATUS_ZOMBIE
            and proc.create_time() >= started - 1.0
        )
    except psutil.Error:
        return False


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    tmp = tmp_path_factory.mktemp("localkube-api")
    (tmp / "logs").mkdir()
    # only what this module started counts (an earlier module's watchdog may still be
    # finishing its sweep), and a zombie has already exited
    started = time.time()
    with ThreadedApiServer(log_dir=tmp / "logs") as server:
        kubeconfig = server.write_kubeconfig(tmp / "kubeconfig")
        env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBECACHEDIR=str(tmp / "cache"))
        yield Kube(server, env, tmp)
    leftover = [p for p in psutil.Process().children(recursive=True) if _alive_since(p, started)]
    for proc in leftover:
        proc.kill()
    assert not leftover, f"processes outlived the tests: {leftover}"
