"""`kubectl get` Tables: built-in column sets, CRD printer columns, the JSONPath subset.

kubectl asks for `as=Table` and prints what the server sends; without it, it prints only
NAME and AGE. Cells are computed here as kubectl's own printers would (ages such as `7s`,
pod READY `1/1`, ports `80/TCP`); row objects are `PartialObjectMetadata` carrying the
namespace and labels kubectl needs for `-A` and `--show-labels`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from .kinds import ResourceKind
from .meta import dig, parse_time

__all__ = ["bookmark_table", "build_table", "human_age", "jsonpath_value", "jsonpath_values"]

_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z0-9_\-$/]+)
      | \[(?P<index>-?\d+|\*)\]
      | \[['"](?P<qname>[^'"]+)['"]\]
      | \[\?\(@(?P<fpath>(?:\.[A-Za-z0-9_\-]+)+)\s*(?P<op>==|!=)\s*
            (?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<num>[\w.\-]+))\s*\)\]""",
    re.VERBOSE,
)


def jsonpath_values(obj: Any, path: str) -> list[Any]:
    """All matches of a simple JSONPath (`.a.b`, `[0]`, `[*]`, `[?(@.k=="v")]`)."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    current = [obj]
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            return []
        pos = m.end()
        nxt: list[Any] = []
        for value in current:
            if m.group("name") is not None or m.group("qname") is not None:
                key = m.group("name") or m.group("qname")
                if isinstance(value, dict) and key in value:
                    nxt.append(value[key])
            elif m.group("index") is not None:
                if isinstance(value, list):
                    if m.group("index") == "*":
                        nxt.extend(value)
                    else:
                        i = int(m.group("index"))
                        if -len(value) <= i < len(value):
                            nxt.append(value[i])
                elif isinstance(value, dict) and m.group("index") == "*":
                    nxt.extend(value.values())
            else:
                want = m.group("dq") if m.group("dq") is not None else m.group("sq")
                if want is None:
                    want = m.group("num")
                fkeys = [k for k in m.group("fpath").split(".") if k]
                for item in value if isinstance(value, list) else []:
                    got = dig(item, *fkeys)
                    equal = got is not None and str(got) == want
                    if equal == (m.group("op") == "=="):
                        nxt.append(item)
        current = nxt
    return current


def jsonpath_value(obj: Any, path: str) -> Any:
    values = jsonpath_values(obj, path)
    return values[0] if values else None


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


def _age(ts: Any) -> str:
    if not ts:
        return "<unknown>"
    return human_age(time.time() - parse_time(str(ts)))


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
    end = parse_time(status["completionTime"]) if status.get("completionTime") else time.time()
    return human_age(end - parse_time(status["startTime"]))


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
    return _age(ts or _meta(o, "creationTimestamp"))


_AGE: Col = ("Age", "string", 0, lambda o: _age(_meta(o, "creationTimestamp")))
_NAME: Col = ("Name", "string", 0, lambda o: _meta(o, "name"))

_EVENT_COLS: list[Col] = [
    ("Last Seen", "string", 0, _event_last_seen),
    ("Type", "string", 0, lambda o: o.get("type")),
    ("Reason", "string", 0, lambda o: o.get("reason")),
    ("Object", "string", 0, _event_object),
    ("Message", "string", 0, lambda o: o.get("message") or o.get("note")),
]

_BUILTIN: dict[str, list[Col]] = {
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
    ],
    "apps/deployments": [
        _NAME,
        (
            "Ready",
            "string",
            0,
            lambda o: f"{dig(o, 'status', 'readyReplicas') or 0}/{dig(o, 'spec', 'replicas')}",
        ),
        ("Up-to-date", "integer", 0, lambda o: dig(o, "status", "updatedReplicas") or 0),
        ("Available", "integer", 0, lambda o: dig(o, "status", "availableReplicas") or 0),
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
            "integer",
            0,
            lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}),
        ),
        _AGE,
    ],
    "/secrets": [
        _NAME,
        ("Type", "string", 0, lambda o: o.get("type")),
        ("Data", "integer", 0, lambda o: len(o.get("data") or {})),
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
        ("Created At", "date", 0, lambda o: _meta(o, "creationTimestamp")),
    ],
}


def _crd_columns(kind: ResourceKind, version: str) -> list[Col]:
    cols: list[Col] = [_NAME]
    for pc in kind.printer_columns.get(version, []):
        path, ctype = pc.get("jsonPath", ""), pc.get("type", "string")

        def getter(o: dict[str, Any], path: str = path, ctype: str = ctype) -> Any:
            values = jsonpath_values(o, path)
            if not values:
                return None
            if ctype == "date":
                return _age(values[0])
            if len(values) == 1:
                return values[0]
            return ",".join(str(v) for v in values)

        cols.append((pc.get("name", ""), ctype, int(pc.get("priority", 0)), getter))
    if not any(c[0] == "Age" for c in cols):
        cols.append(_AGE)
    return cols


def build_table(
    kind: ResourceKind,
    version: str,
    items: list[dict[str, Any]],
    resource_version: str,
    *,
    include_object: str = "Metadata",
) -> dict[str, Any]:
    cols = _BUILTIN.get(kind.key) if kind.builtin else None
    if cols is None:
        cols = _crd_columns(kind, version) if not kind.builtin else [_NAME, _AGE]
    definitions = [
        {
            "name": name,
            "type": "string" if ctype == "date" else ctype,
            "format": "name" if i == 0 and name == "Name" else "",
            "description": name,
            "priority": priority,
        }
        for i, (name, ctype, priority, _) in enumerate(cols)
    ]
    rows = []
    for obj in items:
        cells = [getter(obj) for _, _, _, getter in cols]
        if include_object == "Object":
            row_obj: dict[str, Any] = obj
        else:
            row_obj = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append({"cells": cells, "object": row_obj})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }


def bookmark_table(bookmark: dict[str, Any]) -> dict[str, Any]:
    """A watch BOOKMARK as a Table watch carries it: one row whose object is metadata only."""
    meta = bookmark["metadata"]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": meta["resourceVersion"]},
        "columnDefinitions": [],
        "rows": [
            {
                "cells": [],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                },
            }
        ],
    }
