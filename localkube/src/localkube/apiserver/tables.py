"""`kubectl get` Tables: CRD printer columns, the JSONPath subset, the Table body.

kubectl asks for `as=Table` and prints what the server sends; without it, it prints only
NAME and AGE. Built-in kinds take their columns from :mod:`.columns`; a custom resource gets
Name, then its CRD's `additionalPrinterColumns` (Age only when it declares none, as
kube-apiserver does), dates as ages and lists or maps as compact JSON. Row objects are
`PartialObjectMetadata` carrying the namespace and labels kubectl needs for `-A` and
`--show-labels`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .columns import BUILTIN_COLUMNS, NAME_AND_AGE, NAME_DESCRIPTION, Col, age, human_age
from .kinds import ResourceKind
from .meta import dig

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


def _cell(value: Any) -> Any:
    """A printer-column value as kube-apiserver sends it: lists and maps as compact JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def _crd_columns(kind: ResourceKind, version: str) -> list[tuple[Col, str]]:
    """Name, then the CRD's printer columns; Age only when it declares none (as upstream)."""
    columns = kind.printer_columns.get(version) or [
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]
    cols: list[tuple[Col, str]] = [
        (("Name", "string", 0, lambda o: o["metadata"].get("name")), NAME_DESCRIPTION)
    ]
    for pc in columns:
        path, ctype = pc.get("jsonPath", ""), pc.get("type", "string")

        def getter(o: dict[str, Any], path: str = path, ctype: str = ctype) -> Any:
            values = jsonpath_values(o, path)
            if not values:
                return None
            if ctype == "date":
                return age(values[0])
            if len(values) == 1:
                return _cell(values[0])
            return ",".join(str(_cell(v)) for v in values)

        description = pc.get("description") or (
            f"Custom resource definition column (in JSONPath format): {path}"
        )
        col: Col = (pc.get("name", ""), ctype, int(pc.get("priority", 0)), getter)
        cols.append((col, description))
    return cols


def build_table(
    kind: ResourceKind,
    version: str,
    items: list[dict[str, Any]],
    resource_version: str,
    *,
    include_object: str = "Metadata",
) -> dict[str, Any]:
    if kind.builtin:
        described = [(c, c[0]) for c in BUILTIN_COLUMNS.get(kind.key, NAME_AND_AGE)]
    else:
        described = _crd_columns(kind, version)
    cols = [c for c, _ in described]
    definitions = [
        {
            "name": name,
            "type": ctype,
            "format": "name" if name == "Name" and (i == 0 or priority) else "",
            "description": description,
            "priority": priority,
        }
        for i, ((name, ctype, priority, _), description) in enumerate(described)
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
