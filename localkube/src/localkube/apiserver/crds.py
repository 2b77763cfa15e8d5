"""CustomResourceDefinitions: validation, status, and the resource each one serves.

A CRD is stored like any object; on every write the engine asks :func:`accept_crd` for
its status (names accepted, `Established`), and :func:`kind_from_crd` for the
:class:`ResourceKind` that discovery, OpenAPI and routing then publish. Deleting a CRD goes
through the `customresourcecleanup.apiextensions.k8s.io` finalizer, as upstream: its
custom resources are deleted first (honouring their finalizers), then the CRD goes.
"""

from __future__ import annotations

from typing import Any

from kubellm.api.timestamps import now_rfc3339

from .defaults import invalid
from .kinds import ResourceKind, ScalePaths, version_priority

__all__ = ["CLEANUP_FINALIZER", "accept_crd", "kind_from_crd", "validate_crd"]

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def validate_crd(crd: dict[str, Any]) -> None:
    """422 for a CRD upstream would reject (name, names, versions)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    name = crd["metadata"]["name"]
    causes: list[dict[str, str]] = []
    group, plural = spec.get("group", ""), names.get("plural", "")
    if not group:
        causes.append(
            {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.group"}
        )
    if not plural:
        causes.append(
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.names.plural",
            }
        )
    if not names.get("kind"):
        causes.append(
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.names.kind",
            }
        )
    if name != f"{plural}.{group}":
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "message": f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                "field": "metadata.name",
            }
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(
            {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.versions"}
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            {
                "reason": "FieldValueInvalid",
                "message": "Invalid value: must have exactly one version marked as storage version",
                "field": "spec.versions",
            }
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            {
                "reason": "FieldValueNotSupported",
                "message": f'Unsupported value: "{spec.get("scope")}": supported values: '
                '"Cluster", "Namespaced"',
                "field": "spec.scope",
            }
        )
    if causes:
        raise invalid("CustomResourceDefinition", name, causes, group="apiextensions.k8s.io")


def accept_crd(crd: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Fill in the status a real apiserver's controllers would set (in place)."""
    spec = crd["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    status = crd.setdefault("status", {})
    status["acceptedNames"] = names
    stored = list((old or {}).get("status", {}).get("storedVersions") or [])
    for v in spec.get("versions", []):
        if v.get("storage") and v["name"] not in stored:
            stored.append(v["name"])
    status["storedVersions"] = stored
    now = now_rfc3339()
    previous = {c["type"]: c for c in ((old or {}).get("status", {}).get("conditions") or [])}
    conditions = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "reason": "NoConflicts",
            "message": "no conflicts found",
            "lastTransitionTime": previous.get("NamesAccepted", {}).get("lastTransitionTime", now),
        },
        {
            "type": "Established",
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
            "lastTransitionTime": previous.get("Established", {}).get("lastTransitionTime", now),
        },
    ]
    if crd["metadata"].get("deletionTimestamp"):
        conditions.append(
            {
                "type": "Terminating",
                "status": "True",
                "reason": "InstanceDeletionInProgress",
                "message": "CustomResource deletion is in progress",
                "lastTransitionTime": now,
            }
        )
    status["conditions"] = conditions


def kind_from_crd(crd: dict[str, Any]) -> ResourceKind:
    spec = crd["spec"]
    names = spec["names"]
    served = [v for v in spec.get("versions", []) if v.get("served", True)]
    storage = next((v for v in spec["versions"] if v.get("storage")), spec["versions"][0])
    others = sorted(
        (v for v in served if v is not storage),
        key=lambda v: version_priority(v["name"]),
        reverse=True,
    )
    ordered = [storage, *others]
    subresources = storage.get("subresources") or {}
    scale = subresources.get("scale")
    scale_paths = (
        ScalePaths(
            spec_replicas=scale.get("specReplicasPath", ".spec.replicas"),
            status_replicas=scale.get("statusReplicasPath", ".status.replicas"),
            label_selector=scale.get("labelSelectorPath"),
        )
        if isinstance(scale, dict)
        else None
    )
    schemas = {
        v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}
        for v in ordered
    }
    return ResourceKind(
        group=spec["group"],
        versions=tuple(v["name"] for v in ordered if v.get("served", True) or v is storage),
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        kind=names["kind"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        status="status" in subresources,
        scale=scale_paths,
        has_generation=True,
        builtin=False,
        printer_columns={v["name"]: list(v.get("additionalPrinterColumns") or []) for v in ordered},
        schemas=schemas,
        preserve_unknown=bool(schemas[storage["name"]].get("x-kubernetes-preserve-unknown-fields")),
    )
