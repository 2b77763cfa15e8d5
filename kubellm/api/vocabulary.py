"""The words of the LLM's API: phases, states, verdicts, condition types and reasons.

Each word is a member of a StrEnum whose value is the string users read (``kubectl get``
columns, conditions, Events, registry tags) and that tests and docs quote: a value never
changes. Code compares and writes members, never literals, so a new word (a rollout state,
a reason) is added here once and the type checker finds every place that must handle it.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CONDITION_ORDER",
    "FAILURE_REASONS",
    "WARNING_WHEN_TRUE",
    "CandidateState",
    "ConditionStatus",
    "ConditionType",
    "EventReason",
    "EventType",
    "LoadTestVerdict",
    "Phase",
    "Reason",
    "ReleaseVerdict",
    "RollbackState",
    "RollbackTrigger",
    "TrainingState",
    "WatchState",
]


class Phase(StrEnum):
    """A short summary of the LLM for printer columns (conditions are the contract)."""

    PENDING = "Pending"
    TRAINING = "Training"
    DEPLOYING = "Deploying"
    LOAD_TESTING = "LoadTesting"
    CANARY = "Canary"
    PROMOTING = "Promoting"
    READY = "Ready"
    DEGRADED = "Degraded"
    FAILED = "Failed"
    INVALID = "Invalid"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    SPEC_VALID = "SpecValid"
    TRAINED = "Trained"
    CANDIDATE_READY = "CandidateReady"
    LOAD_TEST_PASSED = "LoadTestPassed"
    READY = "Ready"
    #: True when the registry's production alias names another version than the one served
    PRODUCTION_ALIAS_DRIFT = "ProductionAliasDrift"
    #: True when the post-promotion watch rolled the latest promotion back by itself
    ROLLED_BACK = "RolledBack"


#: the canonical order of conditions in status (others follow, by type)
CONDITION_ORDER = (
    ConditionType.SPEC_VALID,
    ConditionType.TRAINED,
    ConditionType.CANDIDATE_READY,
    ConditionType.LOAD_TEST_PASSED,
    ConditionType.READY,
)


class Reason(StrEnum):
    """Machine-readable reasons of the operator's conditions (CamelCase)."""

    # SpecValid
    VALID = "Valid"
    INVALID_SPEC = "InvalidSpec"
    IMAGE_NOT_ALLOWED = "ImageNotAllowed"
    TRACKING_URI_NOT_ALLOWED = "TrackingUriNotAllowed"
    # Trained
    NO_TRAINING_REQUESTED = "NoTrainingRequested"
    TRAINING_PENDING = "TrainingPending"
    TRAINING_RUNNING = "TrainingRunning"
    TRAINING_SUCCEEDED = "TrainingSucceeded"
    TRAINING_FAILED = "TrainingFailed"
    # CandidateReady
    NO_CANDIDATE = "NoCandidate"
    CANDIDATE_STARTING = "CandidateStarting"
    CANDIDATE_AVAILABLE = "CandidateAvailable"
    CANDIDATE_REFUSED = "CandidateRefused"
    CANDIDATE_WITHDRAWN = "CandidateWithdrawn"
    # LoadTestPassed
    LOAD_TEST_PENDING = "LoadTestPending"
    LOAD_TEST_RUNNING = "LoadTestRunning"
    LOAD_TEST_PASSED = "LoadTestPassed"
    LOAD_TEST_FAILED = "LoadTestFailed"
    CANARY_RUNNING = "CanaryRunning"
    CANARY_FAILED = "CanaryFailed"
    PROMOTED = "Promoted"
    # Ready
    NO_PRODUCTION_VERSION = "NoProductionVersion"
    PRODUCTION_SERVING = "ProductionServing"
    PRODUCTION_STARTING = "ProductionStarting"
    SCALED_TO_ZERO = "ScaledToZero"
    # ProductionAliasDrift
    ALIAS_IN_SYNC = "AliasInSync"
    ALIAS_MOVED_OUTSIDE_OPERATOR = "AliasMovedOutsideOperator"
    # RolledBack (spec.rollout.postPromotion, or a kubellm.dev/rollback-to request)
    WATCHING = "Watching"
    WATCH_PASSED = "WatchPassed"
    POST_PROMOTION_BREACH = "PostPromotionBreach"
    #: a ``kubellm.dev/rollback-to`` request moved production back
    ROLLBACK_REQUESTED = "RollbackRequested"


#: reasons of a False condition that report a failure: their transition is a Warning Event
FAILURE_REASONS = frozenset(
    {
        Reason.TRAINING_FAILED,
        Reason.LOAD_TEST_FAILED,
        Reason.CANARY_FAILED,
        Reason.CANDIDATE_REFUSED,
        Reason.INVALID_SPEC,
        Reason.PRODUCTION_STARTING,
    }
)

#: conditions that report a problem when True; a change of their message is news too
WARNING_WHEN_TRUE = frozenset({ConditionType.PRODUCTION_ALIAS_DRIFT, ConditionType.ROLLED_BACK})


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class EventReason(StrEnum):
    """Reasons of the Events the planner posts (a condition's transition posts its own)."""

    TRAINING_STARTED = "TrainingStarted"
    TRAINING_SUPERSEDED = "TrainingSuperseded"
    CANDIDATE_DEPLOYING = "CandidateDeploying"
    LOAD_TEST_STARTED = "LoadTestStarted"
    CANARY_STEP_STARTED = "CanaryStepStarted"
    PROMOTED = "Promoted"
    REFUSED = "Refused"
    RETIRED = "Retired"
    ROLLED_BACK = "RolledBack"
    ROLLBACK_REFUSED = "RollbackRefused"
    WATCH_STARTED = "WatchStarted"
    WATCH_PASSED = "WatchPassed"
    APPLY_REFUSED = "ApplyRefused"
    SCALING_FROM_ZERO = "ScalingFromZero"
    SCALED_TO_ZERO = "ScaledToZero"


class TrainingState(StrEnum):
    """``status.training.state``: where the training Job of the current spec stands."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class CandidateState(StrEnum):
    """``status.candidate.state``: where the release under test stands."""

    STARTING = "Starting"
    LOAD_TESTING = "LoadTesting"
    CANARY = "Canary"
    PASSED = "Passed"
    REFUSED = "Refused"


class RollbackState(StrEnum):
    """``status.rollback.state``: how a ``kubellm.dev/rollback-to`` request was answered."""

    DONE = "Done"
    REFUSED = "Refused"


class RollbackTrigger(StrEnum):
    """What rolled production back (the operator's rollbacks metric counts by it)."""

    #: the post-promotion watch saw production breach an objective
    WATCH = "watch"
    #: a ``kubellm.dev/rollback-to`` request
    ANNOTATION = "annotation"


class WatchState(StrEnum):
    """``status.production.watch.state``: the post-promotion watch of the latest promotion."""

    WATCHING = "Watching"
    PASSED = "Passed"
    ROLLED_BACK = "RolledBack"


class LoadTestVerdict(StrEnum):
    """What ``kubellm loadtest`` concluded: its exit code says the same (0, 1, 2)."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


class ReleaseVerdict(StrEnum):
    """The gate's decision on a release (``status.history``, the registry's verdict tag)."""

    PROMOTED = "promoted"
    REFUSED = "refused"
    #: promoted, then rolled back by the post-promotion watch
    ROLLED_BACK = "rolledBack"
