"""Building blocks every part of the LLM spec uses: string formats, CEL rules, the base model.

The spec is split by concern (training, serving, rollout, registry); what they share lives
here so that no concern module imports another. Kubernetes-style strings (quantities,
durations, decimals) stand in for floats, as the API conventions ask, and `cel` builds the
`x-kubernetes-validations` entries the CRD generator copies into the schema.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

__all__ = [
    "DECIMAL_PATTERN",
    "DNS_LABEL_PATTERN",
    "DURATION_PATTERN",
    "QUANTITY_PATTERN",
    "RATIO_PATTERN",
    "Duration",
    "Quantity",
    "ResourcesSpec",
    "SpecModel",
    "cel",
    "cel_string",
    "duration_seconds",
]

# Kubernetes quantity ("500m", "2Gi", "1.5") and duration ("90s", "1m30s", "2h") strings.
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
# Each unit at most once, largest first, as `kubellm loadtest` accepts them (it refuses
# "1s1m"); the empty match is excluded by the Duration type's min_length.
DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"
DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
RATIO_PATTERN = r"^(0(\.[0-9]+)?|1(\.0+)?)$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, min_length=2, max_length=32)]
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration_seconds(text: str) -> float:
    """Seconds in a Duration string (already matched against DURATION_PATTERN)."""
    return sum(
        float(amount) * _DURATION_UNITS[unit]
        for amount, unit in re.findall(r"([0-9]+)(ms|h|m|s)", text)
    )


def cel_string(text: str) -> str:
    """``text`` as a CEL string literal (single-quoted, backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One `x-kubernetes-validations` entry."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class SpecModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class ResourcesSpec(SpecModel):
    gpus: int = Field(
        default=0, ge=0, le=64, description="GPUs per pod (the cluster's GPU resource name)."
    )
    cpu: Quantity | None = Field(default=None, description='CPU request and limit, e.g. "2".')
    memory: Quantity | None = Field(default=None, description='Memory, e.g. "8Gi".')
