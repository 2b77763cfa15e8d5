"""Structural-schema handling of custom resources, as the apiserver does it on write.

Order, as upstream: unknown fields are pruned (and reported, so `fieldValidation=Strict`
can reject them), `default:` values are applied, then the value is validated against the
schema (type, enum, bounds, pattern, required, sizes), and only then against the
`x-kubernetes-validations` CEL rules. As in apiextensions-apiserver, a "blocking" schema
error (wrong type, required, enum, too long, too many) anywhere skips every rule and adds one
cause saying so. Failures come back as Status causes `{reason, message, field}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .cel import RuleFailure, evaluate_rule, is_transition_rule
from .meta import clone

__all__ = ["SchemaResult", "process"]

_ROOT_KEEP = ("apiVersion", "kind", "metadata")
_MISSING = object()
_BLOCKING = {
    "FieldValueNotSupported",
    "FieldValueRequired",
    "FieldValueTooLong",
    "FieldValueTooMany",
    "FieldValueTypeInvalid",
}
# how kube-apiserver words a failed CEL rule, by the rule's reason (the value is not shown)
_RULE_MESSAGES = {
    "FieldValueInvalid": "Invalid value: {}",
    "FieldValueForbidden": "Forbidden: {}",
    "FieldValueRequired": "Required value: {}",
    "FieldValueDuplicate": "Duplicate value",
}
RULES_NOT_CHECKED = {
    "reason": "FieldValueInvalid",
    "message": "Invalid value: null: some validation rules were not checked because the "
    "object was invalid; correct the existing errors to complete validation",
    "field": "<nil>",
}


@dataclass
class SchemaResult:
    value: Any
    causes: list[dict[str, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


@lru_cache(maxsize=256)
def _pattern(p: str) -> re.Pattern[str]:
    return re.compile(p)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    t = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, int | str) and not isinstance(value, bool)
    if not t:
        return True
    actual = _type_name(value)
    if t == "number":
        return actual in ("integer", "number")
    return bool(actual == t)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict | list):
        return f'"{_type_name(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Walker:
    def __init__(self) -> None:
        self.causes: list[dict[str, str]] = []
        self.unknown: list[str] = []
        # (value, schema, path, old) of each node with CEL rules, run after the walk
        self.rules: list[tuple[Any, dict[str, Any], str, Any]] = []

    def fail(self, path: str, reason: str, message: str) -> None:
        self.causes.append({"reason": reason, "message": message, "field": path})

    def walk(self, value: Any, schema: dict[str, Any], path: str, old: Any) -> Any:
        if value is None:
            return None
        if not _type_ok(value, schema):
            t = schema.get("type", "int-or-string")
            self.fail(
                path,
                "FieldValueTypeInvalid",
                f'Invalid value: "{_type_name(value)}": {path} in body must be of type {t}: '
                f'"{_type_name(value)}"',
            )
            return value
        if isinstance(value, dict):
            value = self._object(value, schema, path, old)
        elif isinstance(value, list):
            value = self._array(value, schema, path, old)
        else:
            self._scalar(value, schema, path)
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(_show(v) for v in schema["enum"])
            self.fail(
                path,
                "FieldValueNotSupported",
                f"Unsupported value: {_show(value)}: supported values: {allowed}",
            )
        if schema.get("x-kubernetes-validations"):
            self.rules.append((value, schema, path, old))
        return value

    def run_rules(self, has_rules: bool) -> None:
        """The CEL rules, unless a blocking schema error makes upstream skip them all."""
        if not has_rules:
            return
        if any(c["reason"] in _BLOCKING for c in self.causes):
            self.causes.append(dict(RULES_NOT_CHECKED))
            return
        for value, schema, path, old in self.rules:
            self._rules(value, schema, path, old)

    def _object(self, value: dict[str, Any], schema: dict[str, Any], path: str, old: Any) -> Any:
        props: dict[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        out: dict[str, Any] = {}
        old_map = old if isinstance(old, dict) else {}
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if not path and key in _ROOT_KEEP:
                out[key] = item
            elif key in props:
                if item is None and not props[key].get("nullable"):
                    continue  # nulls of non-nullable fields are dropped, then defaulted
                out[key] = self.walk(item, props[key], sub, old_map.get(key))
            elif isinstance(additional, dict):
                out[key] = self.walk(item, additional, sub, old_map.get(key))
            elif additional is True or preserve or (embedded and key in _ROOT_KEEP):
                out[key] = item
            else:
                self.unknown.append(sub)
        for key, sub_schema in props.items():
            if key not in out and "default" in sub_schema:
                sub = f"{path}.{key}" if path else key
                out[key] = self.walk(clone(sub_schema["default"]), sub_schema, sub, _MISSING)
        for key in schema.get("required") or []:
            if key not in out:
                self.fail(f"{path}.{key}" if path else key, "FieldValueRequired", "Required value")
        n = len(out)
        if "maxProperties" in schema and n > schema["maxProperties"]:
            self.fail(
                path, "FieldValueTooMany", f"must have at most {schema['maxProperties']} items"
            )
        if "minProperties" in schema and n < schema["minProperties"]:
            self.fail(
                path,
                "FieldValueInvalid",
                f"should have at least {schema['minProperties']} properties",
            )
        return out

    def _array(self, value: list[Any], schema: dict[str, Any], path: str, old: Any) -> Any:
        items = schema.get("items")
        out = value
        if isinstance(items, dict):
            out = [self.walk(v, items, f"{path}[{i}]", _MISSING) for i, v in enumerate(value)]
        if "maxItems" in schema and len(out) > schema["maxItems"]:
            self.fail(
                path,
                "FieldValueTooMany",
                f"Too many: {len(out)}: must have at most {schema['maxItems']} items",
            )
        if "minItems" in schema and len(out) < schema["minItems"]:
            self.fail(
                path,
                "FieldValueInvalid",
                f"Invalid value: {len(out)}: {path} in body should have at least "
                f"{schema['minItems']} items",
            )
        if schema.get("uniqueItems") or schema.get("x-kubernetes-list-type") == "set":
            seen: list[Any] = []
            for v in out:
                if v in seen:
                    self.fail(path, "FieldValueDuplicate", f"Duplicate value: {_show(v)}")
                seen.append(v)
        return out

    def _scalar(self, value: Any, schema: dict[str, Any], path: str) -> None:
        if isinstance(value, str):
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                self.fail(
                    path,
                    "FieldValueTooLong",
                    f"Too long: may not be more than {schema['maxLength']} bytes",
                )
            if "minLength" in schema and len(value) < schema["minLength"]:
                self.fail(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_show(value)}: {path} in body should be at least "
                    f"{schema['minLength']} chars long",
                )
            if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
                self.fail(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {_show(value)}: {path} in body should match "
                    f"'{schema['pattern']}'",
                )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._bounds(value, schema, path)
            mult = schema.get("multipleOf")
            if mult and value % mult:
                self.fail(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {value}: {path} in body should be a multiple of {mult}",
                )

    def _bounds(self, value: float, schema: dict[str, Any], path: str) -> None:
        """minimum/maximum, with OpenAPI v3.0 boolean or JSON-Schema numeric exclusives."""
        for bound, excl, word in (
            ("minimum", "exclusiveMinimum", "greater than"),
            ("maximum", "exclusiveMaximum", "less than"),
        ):
            sign = 1 if bound == "minimum" else -1
            limit, exclusive = schema.get(bound), schema.get(excl)
            if isinstance(exclusive, int | float) and not isinstance(exclusive, bool):
                limit, exclusive = exclusive, True
            if limit is None:
                continue
            below = (value - limit) * sign
            if below < 0 or (exclusive is True and below == 0):
                op = word if exclusive is True else f"{word} or equal to"
                self.fail(
                    path,
                    "FieldValueInvalid",
                    f"Invalid value: {value}: {path} in body should be {op} {limit}",
                )

    def _rules(self, value: Any, schema: dict[str, Any], path: str, old: Any) -> None:
        for rule_spec in schema.get("x-kubernetes-validations") or []:
            rule = rule_spec.get("rule", "")
            has_old = old is not _MISSING and old is not None
            if is_transition_rule(rule) and not has_old:
                continue
            field_path = rule_spec.get("fieldPath") or ""
            where = path + field_path if field_path.startswith((".", "[")) else path
            try:
                ok = evaluate_rule(rule, value, old if has_old else None, has_old=has_old)
            except RuleFailure as e:
                self.fail(where, "FieldValueInvalid", f"Invalid value: {_show(value)}: {rule}: {e}")
                continue
            if ok is True or (not isinstance(ok, bool) and bool(ok)):
                continue
            message = rule_spec.get("message") or f"failed rule: {rule}"
            if rule_spec.get("messageExpression"):
                try:
                    message = str(evaluate_rule(rule_spec["messageExpression"], value))
                except RuleFailure:
                    pass
            reason = rule_spec.get("reason") or "FieldValueInvalid"
            self.fail(
                where, reason, _RULE_MESSAGES.get(reason, "Invalid value: {}").format(message)
            )


def _has_rules(schema: Any) -> bool:
    """Whether any node of the schema carries `x-kubernetes-validations`."""
    if isinstance(schema, dict):
        if schema.get("x-kubernetes-validations"):
            return True
        return any(_has_rules(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_rules(v) for v in schema)
    return False


def process(
    obj: dict[str, Any], schema: dict[str, Any], old: dict[str, Any] | None
) -> SchemaResult:
    """Prune, default and validate `obj` (a whole custom resource) against `schema`."""
    walker = _Walker()
    value = walker.walk(obj, schema, "", old if old is not None else _MISSING)
    walker.run_rules(_has_rules(schema))
    return SchemaResult(value=value, causes=walker.causes, unknown=walker.unknown)
