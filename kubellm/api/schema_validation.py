"""Validate an object against a CRD's openAPIV3Schema offline, as an apiserver would.

Used by `kubellm validate --schema`, by the tests that prove the CRD refuses what the
models refuse, and by anyone who wants apiserver-equivalent errors without a cluster.
`jsonschema` checks types, enums, bounds, patterns and required fields; `cel-python`
evaluates the `x-kubernetes-validations` rules, which no JSON Schema validator knows.
Unknown fields are errors, as with `kubectl apply`'s default strict field validation.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import jsonschema

__all__ = [
    "apply_defaults",
    "cel_errors",
    "crd_schema_errors",
    "schema_errors",
    "strict_schema",
    "validate_against_crd",
]


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy in which every object with `properties` forbids unknown fields."""
    out = copy.deepcopy(schema)

    def walk(node: dict[str, Any], root: bool = False) -> None:
        if "properties" in node:
            if not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
            for name, sub in node["properties"].items():
                if not (root and name == "metadata"):  # ObjectMeta is the apiserver's own
                    walk(sub)
        if isinstance(node.get("items"), dict):
            walk(node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"])

    walk(out, root=True)
    return out


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def schema_errors(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(strict_schema(schema))
    errors = []
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path))):
        path = _path(err.path)
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            for name in extra:
                full = f"{path}.{name}" if path else name
                errors.append(f"{full}: unknown field")
            continue
        if err.validator == "required":
            missing = str(err.message).split("'")[1] if "'" in err.message else err.message
            full = f"{path}.{missing}" if path else missing
            errors.append(f"{full}: Required value")
            continue
        errors.append(f"{path or '<root>'}: {err.message}")
    return errors


@lru_cache(maxsize=256)
def _program(rule: str) -> Any:
    import celpy

    env = celpy.Environment()
    return env.program(env.compile(rule))


def _rules(
    node: dict[str, Any], value: Any, path: str
) -> Iterator[tuple[str, dict[str, str], Any]]:
    for rule in node.get("x-kubernetes-validations", []):
        yield path, rule, value
    if isinstance(value, dict):
        for name, sub in node.get("properties", {}).items():
            if name in value:
                yield from _rules(sub, value[name], f"{path}.{name}" if path else name)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            yield from _rules(node["items"], item, f"{path}[{i}]")


def cel_errors(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Evaluate every CEL rule whose object is present; report failures with their path."""
    from celpy.adapter import json_to_cel
    from celpy.evaluation import CELEvalError

    errors = []
    for path, rule, value in _rules(schema, obj, ""):
        try:
            result = _program(rule["rule"]).evaluate({"self": json_to_cel(value)})
            ok = bool(result) and not isinstance(result, CELEvalError)
        except Exception as exc:  # an evaluation error is a failed rule, as in the apiserver
            ok = False
            rule = {**rule, "message": f"{rule.get('message', rule['rule'])} ({exc})"}
        if not ok:
            field = path + rule.get("fieldPath", "") if rule.get("fieldPath") else path
            errors.append(f"{field or '<root>'}: {rule.get('message', 'failed ' + rule['rule'])}")
    return errors


def apply_defaults(value: Any, node: dict[str, Any]) -> Any:
    """Fill in `default:` values the way the apiserver does (parents first, then children)."""
    if isinstance(value, dict):
        out = dict(value)
        for name, sub in node.get("properties", {}).items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = apply_defaults(out[name], sub)
        return out
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [apply_defaults(item, node["items"]) for item in value]
    return value


def validate_against_crd(obj: dict[str, Any], crd: dict[str, Any]) -> list[str]:
    """All schema and CEL errors for ``obj`` under the first served version of ``crd``."""
    version = next(v for v in crd["spec"]["versions"] if v.get("served", True))
    schema = version["schema"]["openAPIV3Schema"]
    obj = apply_defaults(obj, schema)
    errors = schema_errors(obj, schema)
    if not errors:  # CEL runs on schema-valid objects only, as in the apiserver
        errors = cel_errors(obj, schema)
    return errors


def _value_errors(value: Any, node: dict[str, Any], where: str) -> list[str]:
    """Errors for ``value`` under ``node``, prefixed ``where: ``.

    The schema sees the value with nested defaults applied; CEL rules see it as written,
    as kube-apiserver 1.37 checks them (a rule reading `self.max` fails on a `{}` default).
    """
    errors = schema_errors(apply_defaults(value, node), node) or cel_errors(value, node)
    # "<root>: msg" is about the value itself; ".max: msg" (a rule's fieldPath) is inside it
    return [f"{where}: {line.removeprefix('<root>: ').lstrip('.')}" for line in errors]


def _schema_nodes(node: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from _schema_nodes(sub, f"{path}.properties.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _schema_nodes(node[key], f"{path}.{key}")


def crd_schema_errors(crd: dict[str, Any]) -> list[str]:
    """What a kube-apiserver refuses in a CRD's own schema: a `default`, an `enum` value or
    an `example` that does not validate against the property that declares it (type,
    pattern, enum, bounds, nested defaults and CEL rules).

    Run it on the CRD as Go reads the file (`goyaml.load`), not as PyYAML does: the
    apiserver sees what kubectl or helm decoded.
    """
    errors: list[str] = []
    for version in crd["spec"]["versions"]:
        root = version["schema"]["openAPIV3Schema"]
        for path, node in _schema_nodes(
            root, f"spec.versions[{version['name']}].schema.openAPIV3Schema"
        ):
            if "default" in node:
                errors += _value_errors(node["default"], node, f"{path}.default")
            if "example" in node:
                errors += _value_errors(node["example"], node, f"{path}.example")
            unconstrained = {k: v for k, v in node.items() if k != "enum"}
            for i, value in enumerate(node.get("enum", [])):
                errors += _value_errors(value, unconstrained, f"{path}.enum[{i}]")
    return errors
