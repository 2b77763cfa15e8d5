"""Why a training run failed, by category, so the CLI maps each to one exit code.

The operator reads the exit code and the ``errorKind`` of the termination message: bad
input (the spec must change; retrying cannot help) is told apart from a registry that is
down (retry later) and from a quality gate the model missed.
"""

from __future__ import annotations

__all__ = [
    "BaseModelError",
    "DatasetError",
    "OptionsError",
    "QualityGateFailed",
    "TrainError",
    "TrainInputError",
]


class TrainError(Exception):
    """Base class of every failure that ``kubellm train`` reports by name."""

    kind = "training_failed"


class TrainInputError(TrainError):
    """The inputs can never work as given; retrying the same spec cannot succeed."""

    kind = "bad_input"


class OptionsError(TrainInputError):
    """A flag or environment variable is missing or out of range."""


class DatasetError(TrainInputError):
    """The dataset is missing, empty, unreadable or lacks the text field."""


class BaseModelError(TrainInputError):
    """The base model or the architecture cannot be loaded."""


class QualityGateFailed(TrainError):
    """Training finished but the model missed ``--max-eval-loss``; nothing was registered."""

    kind = "quality_gate"
