"""The columns kube-apiserver prints for built-in kinds (its `printers` package), as Tables.

kubectl prints whatever columns the server sends, so these follow kube-apiserver v1.37's
column sets (names, types, priorities; `-o wide` shows priority 1) for the kinds localkube
serves, with cells computed as its printers compute them (ages such as `7s`, pod READY
`1/1`, ports `80/TCP`). Kinds without a set here print Name and Age.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubellm.api.timestamps import parse_time

from .meta import dig

__all__ = ["BUILTIN_COLUMNS", "NAME_AND_AGE", "NAME_DESCRIPTION", "Col", "age", "human_age"]

NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although "
    "some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)


def human_age(seconds: float) -> str:
    """kubectl's `HumanDuration`."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m" if s % 60 == 0 else f"{m}m{s % 60}s"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h" if m % 60 == 0 else f"{h}h{m % 60}m"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d" if h % 24 == 0 else f"{h // 24}d{h % 24}h"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    return f"{h // (24 * 365)}y"


def _epoch(ts: Any) -> float:
    """Seconds since the epoch; an unreadable timestamp reads as now (age 0)."""
    moment = parse_time(ts)
    return time.time() if moment is None else moment.timestamp()


def age(ts: Any) -> str:
    if not ts:
        return "<unknown>"
    return human_age(time.time() - _epoch(str(ts)))


Col = tuple[str, str, int, Callable[[dict[str, Any]], Any]]  # name, type, priority, getter


def _meta(o: dict[str, Any], k: str) -> Any:
    return o["metadata"].get(k)


def _pod_status(o: dict[str, Any]) -> str:
    status = o.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for cs in status.get("initContainerStatuses") or []:
        state = cs.get("state") or {}
        if "terminated" in state and state["terminated"].get("exitCode", 0) != 0:
            return "Init:" + (state["terminated"].get("reason") or "Error")
        if "waiting" in state and state["waiting"].get("reason") not in (None, "PodInitializing"):
            return "Init:" + state["waiting"]["reason"]
    for cs in reversed(status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            reason = state["terminated"].get("reason") or "Terminated"
    if o["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_ready(o: dict[str, Any]) -> str:
    cs = (o.get("status") or {}).get("containerStatuses") or []
    total = len((o.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for c in cs if c.get('ready'))}/{total}"


def _ports(o: dict[str, Any]) -> str:
    ports = (o.get("spec") or {}).get("ports") or []
    out = []
    for p in ports:
        s = f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        if p.get("nodePort"):
            s = f"{p['port']}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
        out.append(s)
    return ",".join(out) or "<none>"


def _job_status(o: dict[str, Any]) -> str:
    conds = {
        c.get("type"): c.get("status") for c in (o.get("status") or {}).get("conditions") or []
    }
    if conds.get("Complete") == "True":
        return "Complete"
    if conds.get("Failed") == "True":
        return "Failed"
    if conds.get("Suspended") == "True":
        return "Suspended"
    if conds.get("FailureTarget") == "True":
        return "FailureTarget"
    if conds.get("SuccessCriteriaMet") == "True":
        return "SuccessCriteriaMet"
    return "Running"


def _job_duration(o: dict[str, Any]) -> str:
    status = o.get("status") or {}
    if not status.get("startTime"):
        return ""
    end = _epoch(status["completionTime"]) if status.get("completionTime") else time.time()
    return human_age(end - _epoch(status["startTime"]))


def _hpa_targets(o: dict[str, Any]) -> str:
    metrics = (o.get("spec") or {}).get("metrics") or []
    current = (o.get("status") or {}).get("currentMetrics") or []
    parts = []
    for i, m in enumerate(metrics):
        target = dig(m, m.get("type", "").lower() or "pods", "target") or {}
        want = target.get("averageValue") or target.get("averageUtilization") or target.get("value")
        cur = None
        if i < len(current):
            ct = dig(current[i], m.get("type", "").lower() or "pods", "current") or {}
            cur = ct.get("averageValue") or ct.get("averageUtilization") or ct.get("value")
        parts.append(f"{cur if cur is not None else '<unknown>'}/{want}")
    return ", ".join(parts) or "<none>"


def _images(o: dict[str, Any]) -> str:
    spec = dig(o, "spec", "template", "spec") or {}
    return ",".join(str(c.get("image", "")) for c in spec.get("containers") or [])


def _containers(o: dict[str, Any]) -> str:
    spec = dig(o, "spec", "template", "spec") or {}
    return ",".join(str(c.get("name", "")) for c in spec.get("containers") or [])


def _selector(o: dict[str, Any]) -> str:
    labels = dig(o, "spec", "selector", "matchLabels") or dig(o, "spec", "selector") or {}
    if not isinstance(labels, dict):
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in labels.items() if isinstance(v, str)) or "<none>"


def _event_object(o: dict[str, Any]) -> str:
    ref = o.get("involvedObject") or o.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _event_last_seen(o: dict[str, Any]) -> str:
    ts = o.get("lastTimestamp") or o.get("eventTime") or o.get("deprecatedLastTimestamp")
    return age(ts or _meta(o, "creationTimestamp"))


def _event_first_seen(o: dict[str, Any]) -> str:
    ts = o.get("firstTimestamp") or o.get("deprecatedFirstTimestamp") or o.get("eventTime")
    return age(ts or _meta(o, "creationTimestamp"))


def _event_source(o: dict[str, Any]) -> str:
    source = o.get("source") or o.get("deprecatedSource") or {}
    component = source.get("component") or o.get("reportingComponent") or ""
    component = component or o.get("reportingController") or ""
    host = source.get("host") or ""
    return f"{component}, {host}" if host else component


def _event_subobject(o: dict[str, Any]) -> str:
    ref = o.get("involvedObject") or o.get("regarding") or {}
    return str(ref.get("fieldPath") or "")


def _pod_readiness_gates(o: dict[str, Any]) -> str:
    gates = (o.get("spec") or {}).get("readinessGates") or []
    if not gates:
        return "<none>"
    wanted = {g.get("conditionType") for g in gates}
    conditions = (o.get("status") or {}).get("conditions") or []
    met = sum(1 for c in conditions if c.get("type") in wanted and c.get("status") == "True")
    return f"{met}/{len(gates)}"


def _crd_versions(o: dict[str, Any]) -> str:
    versions = (o.get("spec") or {}).get("versions") or []
    return ",".join(
        str(v.get("name", "")) + ("(storage)" if v.get("storage") else "") for v in versions
    )


def _crd_established(o: dict[str, Any]) -> bool:
    conditions = (o.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _role_ref(o: dict[str, Any]) -> str:
    ref = o.get("roleRef") or {}
    return f"{ref.get('kind', '')}/{ref.get('name', '')}"


def _subjects(kind: str) -> Callable[[dict[str, Any]], str]:
    def names(o: dict[str, Any]) -> str:
        out = []
        for s in o.get("subjects") or []:
            if s.get("kind") != kind:
                continue
            name = s.get("name", "")
            out.append(f"{s.get('namespace', '')}/{name}" if kind == "ServiceAccount" else name)
        return ", ".join(out)

    return names


_ACCESS_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def _pvc_access_modes(o: dict[str, Any]) -> str:
    modes = dig(o, "status", "accessModes") or []
    return ",".join(_ACCESS_MODES.get(m, m) for m in modes)


def _int_or_string(value: Any) -> str:
    return "N/A" if value is None else str(value)


_AGE: Col = ("Age", "string", 0, lambda o: age(_meta(o, "creationTimestamp")))
_NAME: Col = ("Name", "string", 0, lambda o: _meta(o, "name"))
_CREATED_AT: Col = ("Created At", "date", 0, lambda o: _meta(o, "creationTimestamp"))
_BINDING_COLS: list[Col] = [
    _NAME,
    ("Role", "string", 0, _role_ref),
    _AGE,
    ("Users", "string", 1, _subjects("User")),
    ("Groups", "string", 1, _subjects("Group")),
    ("ServiceAccounts", "string", 1, _subjects("ServiceAccount")),
]

_EVENT_COLS: list[Col] = [
    ("Last Seen", "string", 0, _event_last_seen),
    ("Type", "string", 0, lambda o: o.get("type")),
    ("Reason", "string", 0, lambda o: o.get("reason")),
    ("Object", "string", 0, _event_object),
    ("Subobject", "string", 1, _event_subobject),
    ("Source", "string", 1, _event_source),
    ("Message", "string", 0, lambda o: o.get("message") or o.get("note")),
    ("First Seen", "string", 1, _event_first_seen),
    ("Count", "string", 1, lambda o: o.get("count") or (o.get("series") or {}).get("count") or 1),
    ("Name", "string", 1, lambda o: _meta(o, "name")),
]

BUILTIN_COLUMNS: dict[str, list[Col]] = {
    "/pods": [
        _NAME,
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        (
            "Restarts",
            "string",
            0,
            lambda o: str(
                sum(
                    c.get("restartCount", 0)
                    for c in (o.get("status") or {}).get("containerStatuses") or []
                )
            ),
        ),
        _AGE,
        ("IP", "string", 1, lambda o: dig(o, "status", "podIP") or "<none>"),
        ("Node", "string", 1, lambda o: dig(o, "spec", "nodeName") or "<none>"),
        (
            "Nominated Node",
            "string",
            1,
            lambda o: dig(o, "status", "nominatedNodeName") or "<none>",
        ),
        ("Readiness Gates", "string", 1, _pod_readiness_gates),
    ],
    "apps/deployments": [
        _NAME,
        (
            "Ready",
            "string",
            0,
            lambda o: f"{dig(o, 'status', 'readyReplicas') or 0}/{dig(o, 'spec', 'replicas')}",
        ),
        ("Up-to-date", "string", 0, lambda o: dig(o, "status", "updatedReplicas") or 0),
        ("Available", "string", 0, lambda o: dig(o, "status", "availableReplicas") or 0),
        _AGE,
        ("Containers", "string", 1, _containers),
        ("Images", "string", 1, _images),
        ("Selector", "string", 1, _selector),
    ],
    "apps/replicasets": [
        _NAME,
        ("Desired", "integer", 0, lambda o: dig(o, "spec", "replicas") or 0),
        ("Current", "integer", 0, lambda o: dig(o, "status", "replicas") or 0),
        ("Ready", "integer", 0, lambda o: dig(o, "status", "readyReplicas") or 0),
        _AGE,
        ("Containers", "string", 1, _containers),
        ("Images", "string", 1, _images),
        ("Selector", "string", 1, _selector),
    ],
    "batch/jobs": [
        _NAME,
        ("Status", "string", 0, _job_status),
        (
            "Completions",
            "string",
            0,
            lambda o: f"{dig(o, 'status', 'succeeded') or 0}/{dig(o, 'spec', 'completions') or 1}",
        ),
        ("Duration", "string", 0, _job_duration),
        _AGE,
        ("Containers", "string", 1, _containers),
        ("Images", "string", 1, _images),
        ("Selector", "string", 1, _selector),
    ],
    "/services": [
        _NAME,
        ("Type", "string", 0, lambda o: dig(o, "spec", "type")),
        ("Cluster-IP", "string", 0, lambda o: dig(o, "spec", "clusterIP") or "<none>"),
        ("External-IP", "string", 0, lambda o: "<none>"),
        ("Port(s)", "string", 0, _ports),
        _AGE,
        ("Selector", "string", 1, _selector),
    ],
    "/configmaps": [
        _NAME,
        (
            "Data",
            "string",
            0,
            lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
        ),
        _AGE,
    ],
    "/secrets": [
        _NAME,
        ("Type", "string", 0, lambda o: o.get("type")),
        ("Data", "string", 0, lambda o: len(o.get("data") or {})),
        _AGE,
    ],
    "/namespaces": [_NAME, ("Status", "string", 0, lambda o: dig(o, "status", "phase")), _AGE],
    "/events": _EVENT_COLS,
    "events.k8s.io/events": _EVENT_COLS,
    "autoscaling/horizontalpodautoscalers": [
        _NAME,
        (
            "Reference",
            "string",
            0,
            lambda o: (
                f"{dig(o, 'spec', 'scaleTargetRef', 'kind')}/"
                f"{dig(o, 'spec', 'scaleTargetRef', 'name')}"
            ),
        ),
        ("Targets", "string", 0, _hpa_targets),
        ("MinPods", "string", 0, lambda o: str(dig(o, "spec", "minReplicas") or 1)),
        ("MaxPods", "string", 0, lambda o: str(dig(o, "spec", "maxReplicas"))),
        ("Replicas", "string", 0, lambda o: str(dig(o, "status", "currentReplicas") or 0)),
        _AGE,
    ],
    "coordination.k8s.io/leases": [
        _NAME,
        ("Holder", "string", 0, lambda o: dig(o, "spec", "holderIdentity") or ""),
        _AGE,
    ],
    "apiextensions.k8s.io/customresourcedefinitions": [
        _NAME,
        ("Scope", "string", 0, lambda o: dig(o, "spec", "scope")),
        ("Versions", "string", 0, _crd_versions),
        _CREATED_AT,
        ("Group", "string", 1, lambda o: dig(o, "spec", "group")),
        ("Kind", "string", 1, lambda o: dig(o, "spec", "names", "kind")),
        (
            "ShortNames",
            "string",
            1,
            lambda o: ",".join(dig(o, "spec", "names", "shortNames") or []),
        ),
        ("Established", "boolean", 1, _crd_established),
    ],
    "rbac.authorization.k8s.io/roles": [_NAME, _CREATED_AT],
    "rbac.authorization.k8s.io/clusterroles": [_NAME, _CREATED_AT],
    "rbac.authorization.k8s.io/rolebindings": _BINDING_COLS,
    "rbac.authorization.k8s.io/clusterrolebindings": _BINDING_COLS,
    "/persistentvolumeclaims": [
        _NAME,
        ("Status", "string", 0, lambda o: dig(o, "status", "phase") or "Pending"),
        ("Volume", "string", 0, lambda o: dig(o, "spec", "volumeName") or ""),
        ("Capacity", "string", 0, lambda o: dig(o, "status", "capacity", "storage") or ""),
        ("Access Modes", "string", 0, _pvc_access_modes),
        ("StorageClass", "string", 0, lambda o: dig(o, "spec", "storageClassName") or ""),
        (
            "VolumeAttributesClass",
            "string",
            0,
            lambda o: dig(o, "spec", "volumeAttributesClassName") or "<unset>",
        ),
        _AGE,
        ("VolumeMode", "string", 1, lambda o: dig(o, "spec", "volumeMode") or "Filesystem"),
    ],
    "policy/poddisruptionbudgets": [
        _NAME,
        ("Min Available", "string", 0, lambda o: _int_or_string(dig(o, "spec", "minAvailable"))),
        (
            "Max Unavailable",
            "string",
            0,
            lambda o: _int_or_string(dig(o, "spec", "maxUnavailable")),
        ),
        (
            "Allowed Disruptions",
            "integer",
            0,
            lambda o: dig(o, "status", "disruptionsAllowed") or 0,
        ),
        _AGE,
    ],
}
NAME_AND_AGE: list[Col] = [_NAME, _AGE]
