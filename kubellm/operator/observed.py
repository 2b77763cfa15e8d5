"""What the operator observed of the world, as plain immutable values.

The reader (`reading.py`) fills these from the Kubernetes API and the registry; `plan()`
consumes them. Keeping them free of client objects is what lets the planner be tested for
every state with no server at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kubellm.gateway.demand import LLMDemand
from kubellm.gateway.windows import ReleaseTraffic

__all__ = [
    "DeploymentState",
    "JobState",
    "LiveTraffic",
    "Observed",
    "RegistryState",
    "ServiceState",
    "TrainingProgress",
]


@dataclass(frozen=True)
class TrainingProgress:
    step: int
    total: int | None
    loss: float | None


@dataclass(frozen=True)
class JobState:
    name: str
    component: str
    version: str | None = None
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    complete: bool = False
    failed_final: bool = False
    #: termination message of the newest finished pod (JSON written by the container)
    message: str | None = None
    #: exit code of that container (load test: 0 pass, 1 fail, 2 error)
    exit_code: int | None = None
    reason: str | None = None
    progress: TrainingProgress | None = None
    start_time: str | None = None
    completion_time: str | None = None
    deleting: bool = False

    @property
    def finished(self) -> bool:
        return self.complete or self.failed_final


@dataclass(frozen=True)
class DeploymentState:
    name: str
    version: str | None
    spec_hash: str | None = None
    replicas: int = 0
    #: spec.replicas: what the Deployment is asked to run (0: scaled to zero)
    desired_replicas: int | None = None
    ready_replicas: int = 0
    available_replicas: int = 0
    updated_replicas: int = 0
    generation: int = 1
    observed_generation: int = 0
    progress_deadline_exceeded: bool = False
    #: e.g. "CrashLoopBackOff: back-off restarting failed container"
    pod_problem: str | None = None
    deleting: bool = False

    @property
    def available(self) -> bool:
        return self.available_replicas >= 1 and not self.deleting


@dataclass(frozen=True)
class ServiceState:
    name: str
    version: str | None
    cluster_ip: str | None
    spec_hash: str | None = None


@dataclass(frozen=True)
class RegistryState:
    reachable: bool = True
    error: str | None = None
    candidate: str | None = None
    production: str | None = None
    #: tags of the candidate version (verdict of an earlier gate lives there)
    candidate_tags: Mapping[str, str] = field(default_factory=dict)
    #: tags of the version behind the production alias (the operator's promotion tag)
    production_tags: Mapping[str, str] = field(default_factory=dict)
    #: the candidate's rolled-back tag (``kubellm.rollout.rolledBack``), as far as it can be
    #: read: the retry token production was rolled back from it under ("" for none, or a
    #: value that cannot be read); None: no such tag
    candidate_rolled_back: str | None = None


@dataclass(frozen=True)
class LiveTraffic:
    """The gateways' answers per release since ``since`` (a canary step's start, or the
    post-promotion watch's window), added up over every gateway replica that answered
    (`kubellm.operator.sampling`)."""

    #: the window's start, as written in ``status.candidate.canary.stepStartedAt`` (a watch:
    #: computed by `planning.watching.watch_since`)
    since: str
    releases: Mapping[str, ReleaseTraffic] = field(default_factory=dict)
    #: gateway replicas that answered, and those asked
    answered: int = 0
    asked: int = 0


@dataclass(frozen=True)
class Observed:
    jobs: Mapping[str, JobState] = field(default_factory=dict)
    deployments: Mapping[str, DeploymentState] = field(default_factory=dict)
    services: Mapping[str, ServiceState] = field(default_factory=dict)
    #: name -> spec hash, for kinds without richer state
    configmaps: Mapping[str, str | None] = field(default_factory=dict)
    hpas: Mapping[str, str | None] = field(default_factory=dict)
    registry: RegistryState = field(default_factory=RegistryState)
    #: the gateways' combined report for this LLM; None: no fresh report (unknown demand)
    demand: LLMDemand | None = None
    #: live figures of a canary step in progress; None: no step, or no gateway answered
    live: LiveTraffic | None = None
    #: live figures of the post-promotion watch's window; None: no watch, or no answer
    watch_live: LiveTraffic | None = None
