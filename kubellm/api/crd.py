"""Generate the LLM CustomResourceDefinition from the pydantic models.

Written by hand because pydantic emits JSON Schema 2020-12 (``$ref``/``$defs``,
``anyOf`` with ``null`` for optionals, titles) while a CRD needs a *structural* OpenAPI v3
schema: every node typed, refs inlined, no nullable unions, defaults on parent objects so
the apiserver can apply nested defaults, and CEL rules under ``x-kubernetes-validations``.
No maintained library does that conversion for pydantic v2.
"""

from __future__ import annotations

import copy
from typing import Any

from kubellm.api import goyaml
from kubellm.api.identity import API_VERSION, GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from kubellm.api.spec import LLMSpec
from kubellm.api.status import LLMStatus

__all__ = ["PRINTER_COLUMNS", "build_crd", "crd_yaml", "openapi_schema", "structural"]

_KEEP = (
    "type",
    "description",
    "default",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "format",
    "x-kubernetes-validations",
)

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Phase",
        "type": "string",
        "jsonPath": ".status.phase",
        "description": "Where the LLM is in its lifecycle.",
    },
    {
        "name": "Stage",
        "type": "string",
        "jsonPath": ".status.stage",
        "description": 'Where the rollout stands, e.g. "Canary 10%", "Watching 4m/10m".',
    },
    {
        "name": "Production",
        "type": "string",
        "jsonPath": ".status.production.version",
        "description": "Registry version taking traffic.",
    },
    {
        "name": "Candidate",
        "type": "string",
        "jsonPath": ".status.candidate.version",
        "description": "Registry version under test.",
    },
    {
        "name": "P95-ms",
        "type": "number",
        "jsonPath": ".status.lastP95Ms",
        "description": "p95 latency of the latest load test (ms).",
    },
    {
        "name": "Replicas",
        "type": "integer",
        "jsonPath": ".status.serving.replicas",
        "description": "Ready replicas of the production release (0: scaled to zero).",
    },
    {
        "name": "Cold-start-s",
        "type": "number",
        "jsonPath": ".status.serving.lastColdStartSeconds",
        "description": "Seconds the latest start from zero took (gateway-measured).",
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**_resolve(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
        return merged
    return node


def _filled_default(schema: dict[str, Any]) -> dict[str, Any]:
    """The object an empty section becomes once the apiserver applies its fields' defaults."""
    return {
        name: copy.deepcopy(sub["default"])
        for name, sub in (schema.get("properties") or {}).items()
        if "default" in sub
    }


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Convert one pydantic JSON-Schema node into a structural OpenAPI v3 node."""
    node = _resolve(node, defs)
    if "anyOf" in node:  # Optional[X] -> X (absence, not null, means "unset" in Kubernetes)
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express union in a structural schema: {node}")
        inner = structural(options[0], defs)
        if node.get("description"):
            inner["description"] = node["description"]
        if node.get("default") is not None:
            inner["default"] = node["default"]
        if "x-kubernetes-validations" in node:  # a Field's json_schema_extra lands out here
            inner["x-kubernetes-validations"] = copy.deepcopy(node["x-kubernetes-validations"])
        return inner
    if "allOf" in node and len(node["allOf"]) == 1:
        base = {k: v for k, v in node.items() if k != "allOf"}
        return structural({**_resolve(node["allOf"][0], defs), **base}, defs)
    out: dict[str, Any] = {k: copy.deepcopy(node[k]) for k in _KEEP if k in node}
    if "const" in node:
        out["enum"] = [node["const"]]
    typ = node.get("type")
    if typ == "object" or "properties" in node:
        out["type"] = "object"
        props = node.get("properties", {})
        if props:
            out["properties"] = {name: structural(sub, defs) for name, sub in props.items()}
            required = [r for r in node.get("required", []) if r in props]
            if required:
                out["required"] = required
            # Nested defaults apply only where the parent exists, so a section that pydantic
            # fills with a default_factory (a plain $ref, neither required nor Optional)
            # gets a default. It is written out whole (every field's own default), not `{}`:
            # kube-apiserver checks a default against the CEL rules of its own node as it
            # stands, and a rule such as `self.warmup < self.duration` fails on `{}`.
            for name, sub in props.items():
                converted = out["properties"][name]
                if (
                    name not in required
                    and "anyOf" not in sub
                    and converted.get("type") == "object"
                    and "properties" in converted
                ):
                    converted["default"] = _filled_default(converted)
        elif isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = structural(node["additionalProperties"], defs)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif typ == "array":
        out["items"] = structural(node.get("items", {}), defs)
    elif typ is None and "enum" in node:
        out["type"] = "string"
    if out.get("type") == "integer":
        out.setdefault("format", "int64")
    return out


def openapi_schema() -> dict[str, Any]:
    """The openAPIV3Schema of the LLM CRD."""
    spec_js = LLMSpec.model_json_schema(by_alias=True, mode="validation")
    status_js = LLMStatus.model_json_schema(by_alias=True, mode="serialization")
    spec_schema = structural(spec_js, spec_js.get("$defs", {}))
    status_schema = structural(status_js, status_js.get("$defs", {}))
    spec_schema["description"] = "Desired state: what to train, how to serve and gate it."
    status_schema["description"] = "Observed state, written by the operator."
    return {
        "type": "object",
        "description": (
            "An LLM: a registered model that kubellm trains, load-tests and serves. "
            "New registry versions are rolled out only after passing the load-test gate."
        ),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": API_VERSION},
            "kind": {"type": "string", "description": KIND},
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {
                        "type": "string",
                        "maxLength": 40,
                        "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$",
                    },
                },
            },
            "spec": spec_schema,
            "status": status_schema,
        },
    }


def build_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "kubellm", "app.kubernetes.io/part-of": "kubellm"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["all", "kubellm"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as YAML that kubectl and helm read with the schema's types (see goyaml)."""
    header = "# Generated by `kubellm crd` from kubellm/api; do not edit by hand.\n"
    return header + goyaml.dump(build_crd())
