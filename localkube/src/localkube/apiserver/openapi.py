"""OpenAPI v3 documents, enough for `kubectl apply` (with validation) and `kubectl explain`.

kubectl reads `/openapi/v3` for the per-group/version URLs, then looks for a `patch`
operation carrying the kind's `x-kubernetes-group-version-kind` and a `fieldValidation`
query parameter: with it, kubectl sends `fieldValidation=Strict` and leaves validation to
the server. `explain` reads `components.schemas`. Built-in kinds get a permissive schema
(the emulator does not vendor Kubernetes' type schemas). The patch operations carry no
request body, so kubectl computes strategic merge patches of built-ins from its compiled-in
types (with the real patch merge keys) rather than from these schemas.
"""

from __future__ import annotations

from typing import Any

from .kinds import Registry, ResourceKind
from .meta import clone

__all__ = ["group_version_document", "openapi_index"]

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

_OBJECT_META_SCHEMA: dict[str, Any] = {
    "description": "ObjectMeta is metadata that all persisted resources must have.",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Name must be unique within a namespace."},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer", "format": "int64"},
        "creationTimestamp": {"type": "string", "format": "date-time"},
        "deletionTimestamp": {"type": "string", "format": "date-time"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
}


_CONVENTIONS = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
# kube-apiserver's descriptions of the three fields every kind has (what `kubectl explain` shows)
_API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    f"unrecognized values. More info: {_CONVENTIONS}#resources"
)
_KIND_DESCRIPTION = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    f"CamelCase. More info: {_CONVENTIONS}#types-kinds"
)
_METADATA_DESCRIPTION = f"Standard object's metadata. More info: {_CONVENTIONS}#metadata"


def _schema_name(kind: ResourceKind, version: str) -> str:
    if not kind.group:
        return f"io.k8s.api.core.{version}.{kind.kind}"
    rev = ".".join(reversed(kind.group.split(".")))
    return f"{rev}.{version}.{kind.kind}"


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def openapi_index(registry: Registry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for group, versions in registry.group_versions().items():
        for v in versions:
            p = _gv_path(group, v)
            paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={registry.generation:016X}"}
    return {"paths": paths}


def _kind_schema(kind: ResourceKind, version: str) -> dict[str, Any]:
    gvk = [{"group": kind.group, "version": version, "kind": kind.kind}]
    if kind.builtin:
        schema: dict[str, Any] = {
            "description": f"{kind.kind} (localkube: fields are not described)",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "properties": {},
        }
    else:
        schema = clone(kind.schemas.get(version) or {"type": "object"})
        schema.setdefault("type", "object")
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": _API_VERSION_DESCRIPTION}
    props["kind"] = {"type": "string", "description": _KIND_DESCRIPTION}
    props["metadata"] = {
        "allOf": [{"$ref": f"#/components/schemas/{OBJECT_META}"}],
        "description": _METADATA_DESCRIPTION,
    }
    schema["x-kubernetes-group-version-kind"] = gvk
    return schema


def _operation(kind: ResourceKind, version: str, verb: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{verb}{kind.kind}",
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": {
            "group": kind.group,
            "version": version,
            "kind": kind.kind,
        },
        "parameters": [
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {"200": {"description": "OK"}},
    }
    return op


def group_version_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    kinds = registry.in_group_version(group, version)
    if not kinds:
        return None
    prefix = "/" + _gv_path(group, version)
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {OBJECT_META: _OBJECT_META_SCHEMA}
    for kind in kinds:
        coll = (
            f"{prefix}/namespaces/{{namespace}}/{kind.plural}"
            if kind.namespaced
            else (f"{prefix}/{kind.plural}")
        )
        paths[coll] = {
            "get": _operation(kind, version, "list"),
            "post": _operation(kind, version, "post"),
        }
        paths[f"{coll}/{{name}}"] = {
            "get": _operation(kind, version, "get"),
            "put": _operation(kind, version, "put"),
            "patch": _operation(kind, version, "patch"),
            "delete": _operation(kind, version, "delete"),
        }
        schemas[_schema_name(kind, version)] = _kind_schema(kind, version)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (localkube)", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }
