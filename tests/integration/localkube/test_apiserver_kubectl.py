"""kubectl checklist (spec §14, items 1-9 and the custom-resource part of 12)."""

from __future__ import annotations

import json
import time

import pytest

from .apiserver_fixtures import WIDGET, WIDGET_CRD, Kube, kube, needs_kubectl

pytestmark = needs_kubectl
__all__ = ["kube"]

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: python:3.11
        command: [python, -m, http.server, "{port}"]
        env: [{{name: A, value: "{value}"}}]
"""


@pytest.fixture(scope="module")
def widgets(kube: Kube) -> Kube:
    out = kube.kubectl("apply", "-f", "-", input=WIDGET_CRD, check=True)
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created" in out.stdout
    return kube


def test_version_reports_minor_32(kube: Kube) -> None:
    out = kube.kubectl("version", "-o", "json", check=True)
    assert json.loads(out.stdout)["serverVersion"]["minor"] == "32"


def test_api_resources_lists_builtin_kinds(kube: Kube) -> None:
    out = kube.kubectl("api-resources", check=True).stdout
    for needle in ("pods", "deployments", "jobs", "horizontalpodautoscalers", "leases"):
        assert needle in out
    assert "customresourcedefinitions" in out
    events = [line for line in out.splitlines() if line.startswith("events ")]
    assert {line.split()[2] for line in events} == {"v1", "events.k8s.io/v1"}


def test_crd_established_and_discoverable(widgets: Kube) -> None:
    out = widgets.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=10s"
    )
    assert "condition met" in out.stdout, out.stderr
    out = widgets.kubectl("api-resources", "--api-group=example.com", check=True)
    assert out.stdout.splitlines()[1].split() == [
        "widgets",
        "wg",
        "example.com/v1",
        "true",
        "Widget",
    ]


def test_apply_created_unchanged_configured(widgets: Kube) -> None:
    cr = WIDGET.format(name="w1", size=3)
    assert "widget.example.com/w1 created" in widgets.kubectl("apply", "-f", "-", input=cr).stdout
    assert "unchanged" in widgets.kubectl("apply", "-f", "-", input=cr).stdout
    edited = WIDGET.format(name="w1", size=4)
    out = widgets.kubectl("apply", "-f", "-", input=edited)
    assert "widget.example.com/w1 configured" in out.stdout, out.stderr
    got = json.loads(widgets.kubectl("get", "widget", "w1", "-o", "json", check=True).stdout)
    assert got["spec"] == {"size": 4, "color": "red", "min": 0, "max": 5}
    assert got["metadata"]["generation"] == 2


def test_apply_deployment_twice_uses_strategic_merge(kube: Kube) -> None:
    out = kube.kubectl("apply", "-f", "-", input=DEPLOY.format(port=8000, value="1"))
    assert "deployment.apps/web created" in out.stdout, out.stderr
    out = kube.kubectl("apply", "-f", "-", input=DEPLOY.format(port=8001, value="2"))
    assert "deployment.apps/web configured" in out.stdout, out.stderr
    got = json.loads(kube.kubectl("get", "deploy", "web", "-o", "json", check=True).stdout)
    container = got["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-1] == "8001"
    assert container["env"] == [{"name": "A", "value": "2"}]
    assert got["spec"]["replicas"] == 1
    assert got["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}


def test_second_create_is_already_exists(widgets: Kube) -> None:
    widgets.kubectl("apply", "-f", "-", input=WIDGET.format(name="w2", size=1), check=True)
    out = widgets.kubectl("create", "-f", "-", input=WIDGET.format(name="w2", size=1))
    assert out.returncode == 1
    assert (
        "(AlreadyExists)" in out.stderr and 'widgets.example.com "w2" already exists' in out.stderr
    )


def test_get_prints_printer_columns_namespaces_and_labels(widgets: Kube) -> None:
    widgets.kubectl("apply", "-f", "-", input=WIDGET.format(name="w3", size=2), check=True)
    lines = widgets.kubectl("get", "widgets", check=True).stdout.splitlines()
    # a CRD with printer columns gets no Age column (as kube-apiserver prints it)
    assert lines[0].split() == ["NAME", "PHASE"]
    lines = widgets.kubectl("get", "widgets", "-A", check=True).stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "PHASE"]
    assert any(line.split()[:2] == ["default", "w3"] for line in lines)
    out = widgets.kubectl("get", "wg", "--show-labels", "-l", "app=demo", check=True).stdout
    assert "app=demo" in out and "w3" in out
    assert "w3" not in widgets.kubectl("get", "wg", "-l", "app!=demo").stdout
    meta = widgets.kubectl("get", "widget", "w3", "-o", "yaml", check=True).stdout
    for field in ("uid:", "resourceVersion:", "generation: 1"):
        assert field in meta


def test_watch_shows_status_patch_without_generation_bump(widgets: Kube) -> None:
    widgets.kubectl("apply", "-f", "-", input=WIDGET.format(name="w4", size=2), check=True)
    watcher = widgets.popen("get", "widgets", "w4", "-w", "--request-timeout=5s")
    try:
        time.sleep(1.0)
        start = time.monotonic()
        widgets.kubectl(
            "patch", "widget", "w4", "--subresource=status", "--type=merge",
            "-p", '{"status":{"phase":"Ready"}}', check=True,
        )  # fmt: skip
        time.sleep(1.0)
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=5)
    rows = [line.split() for line in out.splitlines() if line.startswith("w4")]
    assert rows[-1][1] == "Ready", out
    assert time.monotonic() - start < 5
    got = json.loads(widgets.kubectl("get", "widget", "w4", "-o", "json").stdout)
    assert got["metadata"]["generation"] == 1


def test_explain_and_describe_show_schema_and_events(widgets: Kube) -> None:
    out = widgets.kubectl("explain", "widgets.spec.size", check=True).stdout
    assert "FIELD: size <integer>" in out
    widgets.kubectl("apply", "-f", "-", input=WIDGET.format(name="w5", size=2), check=True)
    uid = widgets.kubectl("get", "widget", "w5", "-o", "jsonpath={.metadata.uid}").stdout
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "kopf-event-"},
        "type": "Normal",
        "reason": "Logging",
        "message": "handled by the operator",
        "source": {"component": "kopf"},
        "involvedObject": {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "name": "w5",
            "namespace": "default",
            "uid": uid,
        },
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
    }
    widgets.kubectl("create", "-f", "-", input=json.dumps(event), check=True)
    out = widgets.kubectl("describe", "widget", "w5", check=True).stdout
    assert "Events:" in out and "kopf" in out and "handled by the operator" in out


def test_wait_for_condition_met_and_timeout(widgets: Kube) -> None:
    widgets.kubectl("apply", "-f", "-", input=WIDGET.format(name="w6", size=2), check=True)
    status = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ok"}]}}
    widgets.kubectl(
        "patch", "widget", "w6", "--subresource=status", "--type=merge", "-p", json.dumps(status),
        check=True,
    )  # fmt: skip
    out = widgets.kubectl("wait", "--for=condition=Ready", "widget/w6", "--timeout=5s")
    assert "condition met" in out.stdout, out.stderr
    out = widgets.kubectl("wait", "--for=condition=Ready", "widget/w5", "--timeout=1s")
    assert out.returncode == 1
    assert "timed out waiting for the condition" in out.stderr


def test_delete_waits_for_finalizer_then_not_found(widgets: Kube) -> None:
    widgets.kubectl("apply", "-f", "-", input=WIDGET.format(name="w7", size=2), check=True)
    widgets.kubectl(
        "patch", "widget", "w7", "--type=merge", "-p",
        '{"metadata":{"finalizers":["example.com/hold"]}}', check=True,
    )  # fmt: skip
    deleting = widgets.popen("delete", "widget", "w7", "--timeout=20s")
    time.sleep(1.0)
    assert deleting.poll() is None  # still waiting on the finalizer
    got = json.loads(widgets.kubectl("get", "widget", "w7", "-o", "json").stdout)
    assert got["metadata"]["deletionTimestamp"]
    widgets.kubectl(
        "patch", "widget", "w7", "--type=json",
        "-p", '[{"op":"remove","path":"/metadata/finalizers"}]', check=True,
    )  # fmt: skip
    out, err = deleting.communicate(timeout=10)
    assert deleting.returncode == 0, err
    assert 'widget.example.com "w7" deleted' in out
    out = widgets.kubectl("get", "widget", "w7")
    assert out.returncode == 1 and "NotFound" in out.stderr


def test_schema_errors_are_reported(widgets: Kube) -> None:
    bad_field = WIDGET.format(name="w8", size=2) + "  sparkle: true\n"
    out = widgets.kubectl("apply", "-f", "-", input=bad_field)
    assert out.returncode == 1 and 'unknown field "spec.sparkle"' in out.stderr
    too_big = WIDGET.format(name="w8", size=11)
    out = widgets.kubectl("apply", "-f", "-", input=too_big)
    assert out.returncode == 1
    assert "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10" in (
        out.stderr
    )
    rule = WIDGET.format(name="w8", size=2) + "  min: 9\n"
    out = widgets.kubectl("apply", "-f", "-", input=rule)
    assert out.returncode == 1 and "spec.max" in out.stderr and "max must be >= min" in out.stderr


def test_typed_generators_send_protobuf_that_is_decoded(kube: Kube) -> None:
    assert "namespace/gen created" in kube.kubectl("create", "ns", "gen", check=True).stdout
    kube.kubectl("create", "configmap", "c1", "-n", "gen", "--from-literal=a=b", check=True)
    kube.kubectl("create", "secret", "generic", "s1", "-n", "gen", "--from-literal=k=v", check=True)
    cm = json.loads(kube.kubectl("get", "cm", "c1", "-n", "gen", "-o", "json", check=True).stdout)
    assert cm["data"] == {"a": "b"}
    secret = json.loads(kube.kubectl("get", "secret", "s1", "-n", "gen", "-o", "json").stdout)
    assert secret["data"] == {"k": "dg=="} and secret["type"] == "Opaque"
    out = kube.kubectl("create", "job", "j0", "--image=x", "--", "true")
    assert out.returncode == 1 and "create it from a manifest" in out.stderr


def test_namespace_delete_removes_contents(kube: Kube) -> None:
    kube.kubectl("create", "ns", "doomed", check=True)
    kube.kubectl("create", "configmap", "c", "-n", "doomed", check=True)
    out = kube.kubectl("delete", "ns", "doomed", "--timeout=10s")
    assert out.returncode == 0 and 'namespace "doomed" deleted' in out.stdout, out.stderr
    assert kube.kubectl("get", "ns", "doomed").returncode == 1


def test_crd_delete_drops_its_api(kube: Kube) -> None:
    crd = WIDGET_CRD.replace("widgets", "gadgets").replace("Widget", "Gadget").replace("wg]", "gd]")
    crd = crd.replace("singular: widget", "singular: gadget")
    kube.kubectl("apply", "-f", "-", input=crd, check=True)
    kube.kubectl(
        "apply",
        "-f",
        "-",
        input=WIDGET.format(name="g1", size=1).replace("Widget", "Gadget"),
        check=True,
    )
    out = kube.kubectl("delete", "crd", "gadgets.example.com", "--timeout=10s")
    assert out.returncode == 0, out.stderr
    out = kube.kubectl("get", "gadgets")
    assert out.returncode == 1 and "the server could not find the requested resource" in out.stderr
