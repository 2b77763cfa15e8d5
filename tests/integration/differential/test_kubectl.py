"""The kubectl part of the acceptance checklist (kube-emulator spec §14, kubectl 1-9 and 13),
run by kubectl 1.35 against localkube and kube-apiserver; outputs compared normalised."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from typing import Any

import yaml

from localkube.testing.localkube import kubectl_binary

from .conftest import Observation, Pair
from .manifests import deployment, widget, widget_yaml
from .probing import MERGE, TABLE, Side, lines, table

# the built-in kinds whose discovery entries and Table columns are compared, by API path
BUILTIN_RESOURCES = {
    "pods": "api/v1",
    "services": "api/v1",
    "configmaps": "api/v1",
    "secrets": "api/v1",
    "events": "api/v1",
    "namespaces": "api/v1",
    "serviceaccounts": "api/v1",
    "persistentvolumeclaims": "api/v1",
    "deployments": "apis/apps/v1",
    "replicasets": "apis/apps/v1",
    "jobs": "apis/batch/v1",
    "horizontalpodautoscalers": "apis/autoscaling/v2",
    "leases": "apis/coordination.k8s.io/v1",
    "poddisruptionbudgets": "apis/policy/v1",
    "roles": "apis/rbac.authorization.k8s.io/v1",
    "rolebindings": "apis/rbac.authorization.k8s.io/v1",
    "clusterroles": "apis/rbac.authorization.k8s.io/v1",
    "clusterrolebindings": "apis/rbac.authorization.k8s.io/v1",
    "customresourcedefinitions": "apis/apiextensions.k8s.io/v1",
}


def test_version(pair: Pair) -> None:
    def observe(side: Side) -> Observation:
        out = side.kubectl("version", "-o", "json")
        server = json.loads(out.stdout)["serverVersion"]
        return {"major": server["major"], "minor": server["minor"]}

    pair.check("version", observe)


def _api_resources(side: Side, *args: str) -> dict[str, str]:
    out = side.kubectl("api-resources", "-o", "wide", *args)
    assert out.returncode == 0, out.stderr
    rows: dict[str, str] = {}
    for line in lines(out.stdout)[1:]:
        name, rest = line.split(" ", 1)
        gv = next(p for p in rest.split() if "/" in p or p == "v1")
        rows[f"{name} {gv}"] = line
    return rows


def test_api_resources_and_subresources(pair: Pair) -> None:
    def observe(side: Side) -> Observation:
        obs: Observation = {}
        for key, row in _api_resources(side).items():
            if key.split()[0] in BUILTIN_RESOURCES:
                obs[f"api-resources:{key}"] = row
        for gv in ("api/v1", "apis/apps/v1", "apis/batch/v1", "apis/apiextensions.k8s.io/v1"):
            for res in side.ok("GET", f"/{gv}")["resources"]:
                base, _, sub = res["name"].partition("/")
                if sub and base in BUILTIN_RESOURCES:
                    key = f"subresources:{gv}/{base}"
                    obs.setdefault(key, []).append(f"{sub} {','.join(res['verbs'])}")
        return {k: sorted(v) if isinstance(v, list) else v for k, v in obs.items()}

    pair.check("discovery", observe)


def test_crd_established_and_discoverable(pair: Pair, crds: dict[str, Observation]) -> None:
    def observe(side: Side) -> Observation:
        obs = dict(crds[side.name])
        for key, row in _api_resources(side, "--api-group=example.com").items():
            obs[f"api-resources:{key}"] = row
        for res in side.ok("GET", "/apis/example.com/v1")["resources"]:
            obs[f"discovery:{res['name']}"] = {
                k: v for k, v in res.items() if k not in ("storageVersionHash",)
            }
        return obs

    pair.check("crd", observe)


def test_apply_created_unchanged_configured(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        ns = ("-n", pair.ns)
        obs: Observation = {}
        for step, size in (("create", 3), ("same", 3), ("edit", 4)):
            out = side.kubectl(*ns, "apply", "-f", "-", input=widget_yaml("w1", size))
            obs[f"widget.{step}"] = (out.returncode, lines(out.stdout), lines(out.stderr))
        got = side.ok("GET", f"/apis/example.com/v1/namespaces/{pair.ns}/widgets/w1")
        obs["widget.spec"] = got["spec"]
        obs["widget.generation"] = got["metadata"]["generation"]
        for step, env in (("create", "1"), ("same", "1"), ("edit", "2")):
            manifest = json.dumps(deployment("web", replicas=0, env=env))
            out = side.kubectl(*ns, "apply", "-f", "-", input=manifest)
            obs[f"deployment.{step}"] = (out.returncode, lines(out.stdout), lines(out.stderr))
        got = side.ok("GET", f"/apis/apps/v1/namespaces/{pair.ns}/deployments/web")
        obs["deployment.env"] = got["spec"]["template"]["spec"]["containers"][0]["env"]
        obs["deployment.generation"] = got["metadata"]["generation"]
        return obs

    pair.check("apply", observe)


def test_create_twice_is_already_exists(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        manifest = widget_yaml("w1", 2)
        first = side.kubectl("-n", pair.ns, "create", "-f", "-", input=manifest)
        again = side.kubectl("-n", pair.ns, "create", "-f", "-", input=manifest)
        return {
            "first": (first.returncode, lines(first.stdout)),
            "again": (again.returncode, lines(again.stdout), lines(again.stderr)),
        }

    pair.check("already-exists", observe)


def test_get_printer_columns_and_tables(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        ns = ("-n", pair.ns)
        side.kubectl(*ns, "apply", "-f", "-", input=widget_yaml("w1", 2))
        side.kubectl(
            *ns,
            "apply",
            "-f",
            "-",
            input=json.dumps(
                {
                    "apiVersion": "example.com/v1",
                    "kind": "Gadget",
                    "metadata": {"name": "g1"},
                    "spec": {"size": 2, "tags": ["a", "b"]},
                }
            ),
        )
        obs: Observation = {}
        for key, args in {
            "widgets": ("get", "widgets"),
            "widgets -A": ("get", "widgets", "-A"),
            "widgets --show-labels": ("get", "wg", "--show-labels", "-l", "app=demo"),
            "widgets -l app!=demo": ("get", "wg", "-l", "app!=demo"),
            "gadgets": ("get", "gadgets"),
            "gadgets -o wide": ("get", "gadgets", "-o", "wide"),
            "crd": ("get", "crd", "widgets.example.com"),
            "crd -o wide": ("get", "crd", "widgets.example.com", "-o", "wide"),
        }.items():
            out = side.kubectl(*ns, *args)
            rows = table(out.stdout)
            if args[-1].startswith("-A"):
                rows = [r for r in rows if r[0] in ("NAMESPACE", pair.ns)]
            obs[f"get {key}"] = (out.returncode, rows, lines(out.stderr))
        meta = yaml.safe_load(side.kubectl(*ns, "get", "widget", "w1", "-o", "yaml").stdout)
        obs["-o yaml metadata"] = sorted(meta["metadata"])
        for resource, gv in BUILTIN_RESOURCES.items():
            got = side.ok("GET", f"/{gv}/{resource}", accept=TABLE, query={"limit": "1"})
            obs[f"columns {resource}"] = [
                f"{c['name']} {c['type']} {c['format']} {c['priority']}"
                for c in got["columnDefinitions"]
            ]
        return obs

    pair.check("printer-columns", observe)


def test_get_watch_shows_status_patch_without_generation_bump(pair: Pair, crds: Any) -> None:
    """`kubectl get -w` prints a new row for a status patch at once (checklist 7)."""

    def observe(side: Side) -> Observation:
        path = f"/apis/example.com/v1/namespaces/{pair.ns}/widgets"
        side.ok("POST", path, widget("w1", 2))
        watcher = subprocess.Popen(
            [kubectl_binary(), "-n", pair.ns, "get", "widgets", "-w", "--output-watch-events"],
            env=side.cluster.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        printed: queue.Queue[str] = queue.Queue()
        assert watcher.stdout is not None
        reader = threading.Thread(
            target=lambda: [printed.put(line) for line in watcher.stdout or ()], daemon=True
        )
        reader.start()
        rows = []
        try:
            rows += [printed.get(timeout=30), printed.get(timeout=30)]  # header, ADDED row
            start = time.monotonic()
            side.ok(
                "PATCH", f"{path}/w1/status", {"status": {"phase": "Ready"}}, content_type=MERGE
            )
            rows.append(printed.get(timeout=10))
            promptly = time.monotonic() - start < 5.0  # 1 s when idle; slack for busy CI
        finally:
            watcher.terminate()
            _, err = watcher.communicate(timeout=10)
        return {
            "watch": table("".join(rows)),
            "row within 5 s": promptly,
            "stderr": lines(err),
            "generation": side.ok("GET", f"{path}/w1")["metadata"]["generation"],
        }

    pair.check("get-watch", observe)


def test_explain_custom_resource_fields(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        obs: Observation = {}
        for field in (
            "widgets",
            "widgets.spec",
            "widgets.spec.size",
            "widgets.spec.nope",
            "widgets.metadata",
            "deployment.spec.replicas",
        ):
            out = side.kubectl("explain", field)
            obs[field] = (out.returncode, lines(out.stdout), lines(out.stderr))
        return obs

    pair.check("explain", observe)


def test_describe_shows_events(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        path = f"/apis/example.com/v1/namespaces/{pair.ns}/widgets"
        w = side.ok("POST", path, widget("w1", 2))
        side.ok(
            "POST",
            f"/api/v1/namespaces/{pair.ns}/events",
            {
                "metadata": {"generateName": "w1-"},
                "involvedObject": {
                    "apiVersion": "example.com/v1",
                    "kind": "Widget",
                    "name": "w1",
                    "namespace": pair.ns,
                    "uid": w["metadata"]["uid"],
                },
                "reason": "Tested",
                "message": "handled by the operator",
                "type": "Normal",
                "source": {"component": "kopf"},
                "firstTimestamp": "2026-01-01T00:00:00Z",
                "lastTimestamp": "2026-01-01T00:00:00Z",
                "count": 1,
            },
        )
        out = side.kubectl("-n", pair.ns, "describe", "widget", "w1")
        text = lines(out.stdout)
        events = text[text.index("Events:") :] if "Events:" in text else text
        sections = [line.split(":")[0] for line in out.stdout.splitlines() if line[:1].isalpha()]
        return {"rc": out.returncode, "events": events, "sections": sections}

    pair.check("describe", observe)


def test_wait_for_condition_and_timeout(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        path = f"/apis/example.com/v1/namespaces/{pair.ns}/widgets"
        side.ok("POST", path, widget("w1", 2))
        status = {"phase": "Ready", "conditions": [{"type": "Ready", "status": "True"}]}
        side.ok("PATCH", f"{path}/w1/status", {"status": status}, content_type=MERGE)
        obs: Observation = {}
        for key, args in {
            "condition": ("--for=condition=Ready", "--timeout=20s"),
            "unmet": ("--for=condition=Other", "--timeout=2s"),
            "jsonpath": ("--for=jsonpath={.status.phase}=Ready", "--timeout=20s"),
        }.items():
            out = side.kubectl("-n", pair.ns, "wait", *args, "widget/w1")
            obs[key] = (out.returncode, lines(out.stdout), lines(out.stderr))
        return obs

    pair.check("wait", observe)


def test_server_side_apply(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        obs: Observation = {}
        ns = ("-n", pair.ns)
        for step in ("create", "again"):
            out = side.kubectl(*ns, "apply", "--server-side", "-f", "-", input=widget_yaml("w1", 3))
            obs[f"kubectl {step}"] = (out.returncode, lines(out.stdout), lines(out.stderr))
        out = side.kubectl(
            *ns,
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            "-",
            input=widget_yaml("w1", 4),
        )
        obs["kubectl conflict"] = (out.returncode, lines(out.stdout), lines(out.stderr)[:1])
        return obs

    pair.check("server-side-apply", observe)
