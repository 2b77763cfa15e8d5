"""Custom-resource schema handling: pruning, defaults, validation, CEL rules."""

from __future__ import annotations

from typing import Any

from localkube.apiserver.schema import process

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["size"],
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "ratio": {"type": "number", "exclusiveMinimum": 0},
                "replicas": {
                    "type": "object",
                    "default": {},
                    "x-kubernetes-validations": [
                        {
                            "rule": "self.max >= self.min",
                            "message": "must be >= min",
                            "fieldPath": ".max",
                        }
                    ],
                    "properties": {
                        "min": {"type": "integer", "default": 1},
                        "max": {"type": "integer", "default": 1},
                    },
                },
                "training": {
                    "type": "object",
                    "properties": {"method": {"type": "string"}, "base": {"type": "string"}},
                    "x-kubernetes-validations": [
                        {
                            "rule": "self.method != 'lora' || has(self.base)",
                            "message": "base needed",
                        },
                        {"rule": "!has(self.base) || size(self.base) > 0"},
                    ],
                },
                "immutable": {
                    "type": "string",
                    "x-kubernetes-validations": [
                        {"rule": "self == oldSelf", "message": "immutable"}
                    ],
                },
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def _cr(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "e/v1", "kind": "W", "metadata": {"name": "w"}, "spec": spec}


def test_defaults_fill_nested_objects_and_unknown_fields_are_pruned_and_reported() -> None:
    result = process(_cr({"size": 2, "sparkle": True, "free": {"x": 1}}), SCHEMA, None)
    assert result.causes == []
    assert result.unknown == ["spec.sparkle"]
    assert result.value["spec"] == {
        "size": 2,
        "free": {"x": 1},
        "color": "red",
        "replicas": {"min": 1, "max": 1},
    }
    assert result.value["metadata"] == {"name": "w"}


def test_type_enum_bounds_pattern_required_errors_have_fields() -> None:
    result = process(
        _cr({"color": "green", "name": "ABCDEFG", "tags": ["a", "b", "c"], "ratio": 0}),
        SCHEMA,
        None,
    )
    fields = {c["field"]: c["reason"] for c in result.causes}
    assert fields["spec.size"] == "FieldValueRequired"
    assert fields["spec.color"] == "FieldValueNotSupported"
    assert fields["spec.name"] in ("FieldValueInvalid", "FieldValueTooLong")
    assert fields["spec.tags"] == "FieldValueTooMany"
    assert fields["spec.ratio"] == "FieldValueInvalid"
    wrong = process(_cr({"size": "big"}), SCHEMA, None)
    assert wrong.causes[0]["reason"] == "FieldValueTypeInvalid"
    assert (
        process(_cr({"size": 11}), SCHEMA, None)
        .causes[0]["message"]
        .endswith("should be less than or equal to 10")
    )


def test_cel_rules_report_message_at_field_path() -> None:
    result = process(_cr({"size": 1, "replicas": {"min": 3, "max": 2}}), SCHEMA, None)
    assert result.causes == [
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: must be >= min",
            "field": "spec.replicas.max",
        }
    ]
    lora = process(_cr({"size": 1, "training": {"method": "lora"}}), SCHEMA, None)
    assert lora.causes[0]["field"] == "spec.training" and "base needed" in lora.causes[0]["message"]
    empty = process(_cr({"size": 1, "training": {"method": "full", "base": ""}}), SCHEMA, None)
    assert "failed rule: !has(self.base) || size(self.base) > 0" in empty.causes[0]["message"]
    assert (
        process(_cr({"size": 1, "training": {"method": "lora", "base": "m"}}), SCHEMA, None).causes
        == []
    )


def test_transition_rules_run_only_on_update() -> None:
    assert process(_cr({"size": 1, "immutable": "a"}), SCHEMA, None).causes == []
    old = _cr({"size": 1, "immutable": "a"})
    changed = process(_cr({"size": 1, "immutable": "b"}), SCHEMA, old)
    assert changed.causes and "immutable" in changed.causes[0]["message"]
