"""Parsing a whole LLM manifest, with errors that name the field and the rule.

A user who gets `spec.serving.replicas.max: must be >= min (2 > 1)` can fix the manifest
without reading our code; the same path style is what the apiserver reports for CRD schema
violations, so both layers speak alike.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubellm.api.identity import API_VERSION, KIND
from kubellm.api.spec import LLMSpec
from kubellm.api.status import LLMStatus

__all__ = ["LLM", "MAX_NAME_LENGTH", "InvalidSpec", "format_errors", "parse_llm", "parse_spec"]

# Children are named `<llm>-loadtest-v<version>`; Service and label values allow 63 chars.
MAX_NAME_LENGTH = 40
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_FIELD_PREFIX = re.compile(
    r"^(?P<path>[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*): (?P<msg>.*)$"
)


class InvalidSpec(ValueError):
    """An LLM manifest that can never work; ``errors`` holds one `path: message` per problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


class LLM(BaseModel):
    """A parsed LLM object: the metadata the operator needs, the spec and the status."""

    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str = "default"
    uid: str | None = None
    generation: int = 1
    spec: LLMSpec
    status: LLMStatus = Field(default_factory=LLMStatus)
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            if parts:
                parts[-1] += f"[{item}]"
            else:
                parts.append(f"[{item}]")
        else:
            parts.append(str(item))
    return ".".join(parts)


def format_errors(exc: ValidationError, prefix: str = "spec") -> list[str]:
    """Turn pydantic's errors into `spec.a.b: message` lines."""
    lines = []
    for err in exc.errors():
        path = _loc_to_path(tuple(err["loc"]))
        msg = str(err["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        m = _FIELD_PREFIX.match(msg)
        if m:  # a cross-field rule names its field itself
            path = f"{path}.{m.group('path')}" if path else m.group("path")
            msg = m.group("msg")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        full = f"{prefix}.{path}" if path else prefix
        lines.append(f"{full}: {msg}")
    return lines


def parse_spec(spec: Any) -> LLMSpec:
    if not isinstance(spec, dict):
        raise InvalidSpec(["spec: must be an object"])
    try:
        return LLMSpec.model_validate(spec)
    except ValidationError as exc:
        raise InvalidSpec(format_errors(exc)) from exc


def parse_llm(obj: dict[str, Any]) -> LLM:
    """Validate a full manifest (apiVersion, kind, metadata, spec) and parse it."""
    errors: list[str] = []
    if obj.get("apiVersion") != API_VERSION:
        errors.append(f"apiVersion: must be {API_VERSION} (got {obj.get('apiVersion')!r})")
    if obj.get("kind") != KIND:
        errors.append(f"kind: must be {KIND} (got {obj.get('kind')!r})")
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        errors.append(
            f"metadata.name: must be a lowercase DNS label starting with a letter (got {name!r})"
        )
    elif len(name) > MAX_NAME_LENGTH:
        errors.append(
            f"metadata.name: must be at most {MAX_NAME_LENGTH} characters "
            f"(got {len(name)}), child objects append suffixes"
        )
    spec: LLMSpec | None = None
    try:
        spec = parse_spec(obj.get("spec"))
    except InvalidSpec as exc:
        errors.extend(exc.errors)
    if errors or spec is None:
        raise InvalidSpec(errors)
    status = LLMStatus.model_validate(obj.get("status") or {})
    return LLM(
        name=name,
        namespace=meta.get("namespace") or "default",
        uid=meta.get("uid"),
        generation=int(meta.get("generation") or 1),
        spec=spec,
        status=status,
        annotations=dict(meta.get("annotations") or {}),
        labels=dict(meta.get("labels") or {}),
    )
