"""Defaults and validation of the built-in kinds (spec §10), as pure functions.

`default_and_validate(key, obj, old, ...)` mutates the fresh copy a write is about to
commit, and raises a 422 :class:`ApiError` with causes where upstream validation would.
Only what clients and the simulated controllers rely on is modelled: pod template
defaults, Deployment/ReplicaSet/Job/HPA defaults, Job selectors, Service cluster IPs,
Secret `stringData`.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from collections.abc import Callable
from typing import Any

from .errors import ApiError
from .selectors import match_label_selector_object

__all__ = ["ClusterIPAllocator", "default_and_validate", "invalid"]


def invalid(
    kind: str, name: str, causes: list[dict[str, str]], *, group: str = "", plural: str = ""
) -> ApiError:
    """A 422 Invalid error with upstream's message shape."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    detail = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(
        422,
        f'{qualified} "{name}" is invalid: {detail}',
        name=name,
        group=group,
        kind=kind,
        causes=causes,
    )


def _go_value(value: Any) -> str:
    """A value as kube-apiserver quotes it in a field error (strings quoted, maps as JSON)."""
    return json.dumps(value, separators=(",", ":"))


def _cause(field: str, message: str, reason: str = "FieldValueInvalid") -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


def _pod_spec(spec: dict[str, Any], path: str, causes: list[dict[str, str]]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append(_cause(f"{path}.containers", "Required value", "FieldValueRequired"))
        return
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            if not isinstance(c, dict):
                continue
            if not c.get("name"):
                causes.append(
                    _cause(f"{path}.{group}[{i}].name", "Required value", "FieldValueRequired")
                )
            if not c.get("image"):
                causes.append(
                    _cause(f"{path}.{group}[{i}].image", "Required value", "FieldValueRequired")
                )
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            image = str(c.get("image", ""))
            latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
            c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            c.setdefault("resources", {})
            for p in c.get("ports") or []:
                if isinstance(p, dict):
                    p.setdefault("protocol", "TCP")
    if spec["restartPolicy"] not in ("Always", "OnFailure", "Never"):
        causes.append(
            _cause(
                f"{path}.restartPolicy",
                f'Unsupported value: "{spec["restartPolicy"]}": supported values: '
                '"Always", "OnFailure", "Never"',
                "FieldValueNotSupported",
            )
        )


def _selector_matches(obj: dict[str, Any], causes: list[dict[str, str]]) -> None:
    spec = obj.setdefault("spec", {})
    selector = spec.get("selector")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector:
        causes.append(_cause("spec.selector", "Required value", "FieldValueRequired"))
    elif not match_label_selector_object(selector, labels):
        causes.append(
            _cause(
                "spec.template.metadata.labels",
                f"Invalid value: {_go_value(labels)}: `selector` does not match template `labels`",
            )
        )


def _immutable(
    obj: dict[str, Any], old: dict[str, Any] | None, causes: list[dict[str, str]]
) -> None:
    if old is None:
        return
    new_sel = obj.get("spec", {}).get("selector")
    old_sel = old.get("spec", {}).get("selector")
    if new_sel != old_sel:
        causes.append(_cause("spec.selector", f"Invalid value: {new_sel!r}: field is immutable"))


def _template(obj: dict[str, Any], causes: list[dict[str, str]]) -> dict[str, Any]:
    tmpl: dict[str, Any] = obj.setdefault("spec", {}).setdefault("template", {})
    tmpl.setdefault("metadata", {})
    _pod_spec(tmpl.setdefault("spec", {}), "spec.template.spec", causes)
    return tmpl


def _deployment(obj: dict[str, Any], old: dict[str, Any] | None, c: list[dict[str, str]]) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxSurge", "25%")
        ru.setdefault("maxUnavailable", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _template(obj, c)
    _selector_matches(obj, c)
    _immutable(obj, old, c)


def _replicaset(obj: dict[str, Any], old: dict[str, Any] | None, c: list[dict[str, str]]) -> None:
    obj.setdefault("spec", {}).setdefault("replicas", 1)
    _template(obj, c)
    _selector_matches(obj, c)
    _immutable(obj, old, c)


def _job(obj: dict[str, Any], old: dict[str, Any] | None, c: list[dict[str, str]]) -> None:
    spec = obj.setdefault("spec", {})
    if "completions" not in spec and "parallelism" not in spec:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    tmpl = _template(obj, c)
    if old is not None:
        spec["selector"] = spec.get("selector") or old["spec"].get("selector")
        spec.setdefault("manualSelector", old["spec"].get("manualSelector"))
    uid = obj["metadata"]["uid"]
    name = obj["metadata"]["name"]
    if not spec.get("manualSelector"):
        spec["manualSelector"] = False  # upstream records the generated selector's choice
        generated = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        if spec.get("selector") and spec["selector"] != generated:
            c.append(
                _cause(
                    "spec.selector",
                    f"Invalid value: {spec['selector']!r}: `selector` not auto-generated",
                )
            )
        spec["selector"] = generated
        labels = tmpl["metadata"].setdefault("labels", {})
        labels.setdefault("batch.kubernetes.io/controller-uid", uid)
        labels.setdefault("batch.kubernetes.io/job-name", name)
        labels.setdefault("controller-uid", uid)
        labels.setdefault("job-name", name)
    _selector_matches(obj, c)
    _immutable(obj, old, c)
    policy = tmpl["spec"].get("restartPolicy")
    if policy not in ("Never", "OnFailure"):
        c.append(
            _cause(
                "spec.template.spec.restartPolicy",
                f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
                "FieldValueNotSupported",
            )
        )


def _service(
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    c: list[dict[str, str]],
    alloc: ClusterIPAllocator | None,
) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for i, p in enumerate(spec.get("ports") or []):
        if not isinstance(p, dict) or "port" not in p:
            c.append(_cause(f"spec.ports[{i}].port", "Required value", "FieldValueRequired"))
            continue
        p.setdefault("protocol", "TCP")
        p.setdefault("targetPort", p["port"])
    old_ip = (old or {}).get("spec", {}).get("clusterIP")
    if old_ip and not spec.get("clusterIP"):
        spec["clusterIP"] = old_ip
    elif old_ip and spec.get("clusterIP") != old_ip:
        c.append(
            _cause(
                "spec.clusterIP",
                f"Invalid value: {_go_value(spec['clusterIP'])}: field is immutable",
            )
        )
    if spec.get("clusterIP") in (None, "") and alloc is not None:
        spec["clusterIP"] = alloc.allocate()
    spec["clusterIPs"] = [spec["clusterIP"]] if spec.get("clusterIP") else []
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def _config_keys(
    obj: dict[str, Any], fields: tuple[str, ...], causes: list[dict[str, str]]
) -> None:
    """ConfigMap and Secret keys, checked as kube-apiserver's IsConfigMapKey does."""
    for name in fields:
        for k in obj.get(name) or {}:
            if not _CONFIG_KEY.fullmatch(str(k)):
                causes.append(
                    _cause(
                        f"{name}[{k}]",
                        f"Invalid value: {_go_value(k)}: a valid config key must consist of "
                        "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
                        "'KEY_NAME',  or 'key-name', regex used for validation is "
                        "'[-._a-zA-Z0-9]+')",
                    )
                )


def _secret(obj: dict[str, Any]) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {}) or {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        obj["data"] = data


# the tolerations kube-apiserver's DefaultTolerationSeconds admission adds to every pod
_DEFAULT_TOLERATIONS = [
    {
        "key": f"node.kubernetes.io/{taint}",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    }
    for taint in ("not-ready", "unreachable")
]


def _pod_admission(spec: dict[str, Any]) -> None:
    """What kube-apiserver's default admission plugins add to a new pod, except tokens.

    ServiceAccount (the `default` account; its token volume is not added, localkube issues
    no tokens), Priority (no PriorityClass: 0), DefaultTolerationSeconds, and the
    enableServiceLinks default.
    """
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = spec["serviceAccount"] = account
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    tolerations = spec.setdefault("tolerations", [])
    for default in _DEFAULT_TOLERATIONS:
        if not any(
            t.get("key") == default["key"] and t.get("effect") in (None, "", "NoExecute")
            for t in tolerations
        ):
            tolerations.append(dict(default))


def _hpa(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):  # upstream's default: 80% average CPU utilisation
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]
    if old is None:  # HorizontalPodAutoscalerStatus fields without omitempty
        obj["status"] = {"currentMetrics": None, "desiredReplicas": 0}


def default_and_validate(
    key: str,
    obj: dict[str, Any],
    old: dict[str, Any] | None,
    *,
    alloc: ClusterIPAllocator | None = None,
) -> None:
    """Apply §10 defaults to `obj` (in place); raise 422 on invalid built-in objects."""
    causes: list[dict[str, str]] = []
    if key == "/pods":
        _pod_spec(obj.setdefault("spec", {}), "spec", causes)
        if old is None:
            _pod_admission(obj["spec"])
            status = obj.setdefault("status", {})
            status.setdefault("phase", "Pending")
            status.setdefault("qosClass", "BestEffort")
    elif key == "apps/deployments":
        _deployment(obj, old, causes)
    elif key == "apps/replicasets":
        _replicaset(obj, old, causes)
    elif key == "batch/jobs":
        _job(obj, old, causes)
    elif key == "/services":
        _service(obj, old, causes, alloc)
    elif key == "/secrets":
        _secret(obj)
        _config_keys(obj, ("data",), causes)
    elif key == "/configmaps":
        _config_keys(obj, ("data", "binaryData"), causes)
    elif key == "autoscaling/horizontalpodautoscalers":
        _hpa(obj, old)
    elif key == "policy/poddisruptionbudgets" and old is None:
        # PodDisruptionBudgetStatus fields without omitempty
        obj["status"] = dict.fromkeys(
            ("currentHealthy", "desiredHealthy", "disruptionsAllowed", "expectedPods"), 0
        )
    elif key == "/namespaces":
        name = obj["metadata"]["name"]
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    if causes:
        kind = obj.get("kind", "")
        group = key.split("/", 1)[0]
        raise invalid(kind, obj["metadata"]["name"], causes, group=group)


class ClusterIPAllocator:
    """Hands out Service cluster IPs from a (loopback) CIDR, skipping those in use."""

    def __init__(self, cidr: str, in_use: Callable[[], set[str]]) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.in_use = in_use

    def allocate(self) -> str:
        used = self.in_use()
        for n, ip in enumerate(self.network.hosts()):
            if n == 0:
                continue  # .1 is the `kubernetes` service in a real cluster
            if str(ip) not in used:
                return str(ip)
        raise ApiError(500, f"failed to allocate a serviceIP: range {self.network} is full")
