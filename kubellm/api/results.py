"""What a Job tells the operator: the results of `kubellm train` and `kubellm loadtest`.

Each result is one class, both what the container writes to its termination message and
what the operator reads from it, in one casing (camelCase, like the CRD): a new field is
declared once, here. A termination message is written by a container that may run an image
the LLM's author chose, so reading one is reading untrusted input, and it never raises:

- a message that is not JSON is kept as the result's error (its tail), not lost;
- only camelCase keys are read, unknown keys are ignored;
- each field is coerced to its type or left unset: a list where a string belongs is
  dropped, a list of scalars where a message belongs is joined, a NaN or a bool is no
  number, an identifier must look like one;
- every string is redacted (no URI userinfo reaches a status) and bounded.

`kubellm.redaction` imports nothing of ours; it is the one import this layer allows itself.
"""

from __future__ import annotations

import math
import re
from abc import abstractmethod
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from kubellm.api import untrusted
from kubellm.api.vocabulary import LoadTestVerdict
from kubellm.redaction import redact

__all__ = [
    "MAX_REASONS",
    "MAX_TEXT",
    "LoadTestSummary",
    "TrainingOutcome",
    "TrainingSummary",
]

#: longest string kept from a message (an error, a name)
MAX_TEXT = 1000
#: longest reason kept, and how many reasons
MAX_REASON = 500
MAX_REASONS = 10
#: how much of a message that is not JSON is kept (its end: where a traceback says why)
UNREADABLE_TAIL = 500
_VERSION = re.compile(r"^[0-9]{1,12}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_E = TypeVar("_E", bound=StrEnum)


class TrainingOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _finite(value: Any) -> float | None:
    """A finite number (bools, strings, NaN and ints beyond any float are none)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        as_float = float(value)
    except OverflowError:
        return None
    return as_float if math.isfinite(as_float) else None


def _count(value: Any) -> int | None:
    number = _finite(value)
    return int(number) if number is not None and abs(number) < 2**53 else None


def _text(limit: int) -> Callable[[Any], str | None]:
    def coerce(value: Any) -> str | None:
        if isinstance(value, list | tuple):
            parts = [coerce(v) for v in value if not isinstance(v, list | tuple | dict)]
            value = "; ".join(p for p in parts if p)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        out = redact(str(value)).strip()
        return out[:limit] if out else None

    return coerce


def _identifier(pattern: re.Pattern[str]) -> Callable[[Any], str | None]:
    def coerce(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return value if isinstance(value, str) and pattern.match(value) else None

    return coerce


def _member(enum: type[_E]) -> Callable[[Any], _E | None]:
    def coerce(value: Any) -> _E | None:
        if not isinstance(value, str):
            return None
        try:
            return enum(value)
        except ValueError:
            return None

    return coerce


def _reasons(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    reasons = [r for r in (_text(MAX_REASON)(item) for item in items) if r]
    return reasons[:MAX_REASONS]


Number = Annotated[float | None, BeforeValidator(_finite)]
Count = Annotated[int | None, BeforeValidator(_count)]
Text = Annotated[str | None, BeforeValidator(_text(MAX_TEXT))]
Version = Annotated[str | None, BeforeValidator(_identifier(_VERSION))]
RunId = Annotated[str | None, BeforeValidator(_identifier(_RUN_ID))]
Reasons = Annotated[list[str], BeforeValidator(_reasons)]


class _Result(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        frozen=True,
    )

    @classmethod
    @abstractmethod
    def unreadable(cls, tail: str) -> Self:
        """The result of a message that is not a JSON object: its tail says why."""

    @classmethod
    def from_message(cls, message: str | None) -> Self:
        """The result a termination message holds; never raises (see the module doc)."""
        if not message:
            return cls()
        try:
            data = untrusted.loads(message)
        except ValueError:
            return cls.unreadable(message.strip()[-UNREADABLE_TAIL:])
        if not isinstance(data, dict):
            return cls()
        try:
            return cls.model_validate(data, by_alias=True, by_name=False)
        except ValidationError:  # every field coerces; kept as a last line of defence
            return cls()

    def dump(self) -> dict[str, Any]:
        """The message as JSON-ready data: camelCase keys, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class TrainingSummary(_Result):
    """The result of `kubellm train` (exit code by category: see `kubellm.training.cli`)."""

    status: Annotated[TrainingOutcome | None, BeforeValidator(_member(TrainingOutcome))] = None
    llm: Text = None
    method: Text = None
    registered_model: Text = None
    run_id: RunId = None
    model_version: Version = None
    alias: Text = None
    base_model: Text = None
    dataset_digest: Text = None
    parameters: Count = None
    trainable_parameters: Count = None
    steps: Count = None
    steps_run: Count = None
    resumed_from_step: Count = None
    train_loss: Number = None
    initial_eval_loss: Number = None
    eval_loss: Number = None
    perplexity: Number = None
    tokens_per_second: Number = None
    train_seconds: Number = None
    duration_seconds: Number = None
    error: Text = None
    #: the failure's category: bad_input, registry_unavailable, quality_gate, ...
    error_kind: Text = None

    @classmethod
    def unreadable(cls, tail: str) -> Self:
        return cls(error=tail)


class LoadTestSummary(_Result):
    """The verdict of `kubellm loadtest` and its headline figures (verdict.json has all).

    The exit code is the contract (0 pass, 1 fail, 2 error): the operator never promotes
    on a non-zero exit, whatever the message says."""

    verdict: Annotated[LoadTestVerdict | None, BeforeValidator(_member(LoadTestVerdict))] = None
    p50_latency_ms: Number = None
    p95_latency_ms: Number = None
    p99_latency_ms: Number = None
    requests_per_second: Number = None
    tokens_per_second: Number = None
    error_rate: Number = None
    requests: Count = None
    p95_time_to_first_token_ms: Number = None
    reasons: Reasons = []
    model_version: Version = None
    registered_model: Text = None
    mlflow_run_id: RunId = None
    #: the quality gate's scores on the evaluation set (candidate, then production's)
    perplexity: Number = None
    baseline_perplexity: Number = None
    perplexity_regression_percent: Number = None
    match_rate: Number = None
    baseline_match_rate: Number = None

    @classmethod
    def unreadable(cls, tail: str) -> Self:
        return cls(reasons=[tail])
