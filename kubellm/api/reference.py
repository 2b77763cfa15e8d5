"""The LLM resource reference in Markdown, generated from the CRD schema (the field docs).

The README embeds it between markers; a test fails when the embedded copy is stale, so the
documentation cannot drift from the schema a cluster enforces.
"""

from __future__ import annotations

from typing import Any

from kubellm.api.crd import build_crd

__all__ = ["BEGIN", "END", "reference_markdown"]

BEGIN = "<!-- BEGIN LLM REFERENCE (generated: kubellm crd --reference) -->"
END = "<!-- END LLM REFERENCE -->"


def _type(node: dict[str, Any]) -> str:
    typ = str(node.get("type", "object"))
    if typ == "array":
        return f"[]{_type(node.get('items', {}))}"
    if "additionalProperties" in node:
        return f"map[string]{_type(node['additionalProperties'])}"
    return typ


def _rules(node: dict[str, Any]) -> str:
    parts = []
    if "enum" in node:
        parts.append("one of " + ", ".join(f"`{v}`" for v in node["enum"]))
    if "minimum" in node:
        parts.append(f">= {node['minimum']}")
    if "maximum" in node:
        parts.append(f"<= {node['maximum']}")
    if "maxLength" in node:
        parts.append(f"at most {node['maxLength']} chars")
    if "default" in node and node["default"] != {}:
        parts.append(f"default `{node['default']}`")
    for rule in node.get("x-kubernetes-validations", []):
        where = f" (`{rule['fieldPath']}`)" if "fieldPath" in rule else ""
        parts.append(f"rule{where}: {rule['message']}")
    return "; ".join(parts)


def _rows(node: dict[str, Any], path: str, required: set[str]) -> list[str]:
    rows = []
    for name, sub in node.get("properties", {}).items():
        full = f"{path}.{name}"
        req = " (required)" if name in required else ""
        desc = str(sub.get("description", "")).replace("|", "\\|")
        rules = _rules(sub)
        rows.append(f"| `{full}`{req} | {_type(sub)} | {desc} | {rules} |")
        child = sub.get("items") if sub.get("type") == "array" else sub
        if isinstance(child, dict) and "properties" in child:
            suffix = "[]" if sub.get("type") == "array" else ""
            rows.extend(_rows(child, full + suffix, set(child.get("required", []))))
    return rows


def reference_markdown() -> str:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec = schema["properties"]["spec"]
    lines = [
        BEGIN,
        "",
        "| field | type | description | constraints |",
        "|---|---|---|---|",
        *_rows(spec, "spec", set(spec.get("required", []))),
        "",
        "Cross-field rules on `spec`: "
        + "; ".join(
            r["message"] + f" (`{r['fieldPath']}`)"
            for r in spec.get("x-kubernetes-validations", [])
        ),
        "",
        END,
    ]
    return "\n".join(lines)
