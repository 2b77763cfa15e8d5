"""Pod faults: make a pod's container crash, exit, start slowly, never be ready, or fail
a share of its HTTP requests.

Reliability tests need the failure paths of a real cluster (Job Failed, Deployment
Progressing=False, CrashLoopBackOff, a release that is Ready but answers 500s) without
writing special test programs. A process fault is matched against each container start; an
`http-errors` fault is matched continuously against the running pod (the kubelet hands it
to the container through a file, see `httpfaults.py`), so it takes effect on a pod that
already runs and ends when it is cleared. A fault can be added from Python
(`cluster.pod_faults.add(...)`), over HTTP (`POST /_localkube/pod-faults` where the API
server lets us mount it) or declared on the Pod itself with the annotation
`localkube.kubellm.dev/fault` (e.g. `crash:after=2`, `exit:code=3`, `never-ready`,
`slow-start:after=5`, `http-errors:rate=0.3,status=503`; put it in a Deployment's or Job's
pod template). The annotation is a localkube extension that a real cluster ignores.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FAULT_ANNOTATION", "FAULT_KINDS", "PodFault", "PodFaults", "parse_annotation"]

FAULT_ANNOTATION = "localkube.kubellm.dev/fault"
FAULT_KINDS = ("crash", "exit", "never-ready", "slow-start", "http-errors")


@dataclass
class PodFault:
    """One fault rule.

    kind: `crash` kills the container's process (SIGKILL, exit 137) `after` seconds after
    it starts; `exit` replaces the command by an immediate exit with `exit_code`;
    `never-ready` fails every readiness check (a container without a readiness probe is
    never Ready either); `slow-start` delays the process start by `after` seconds.
    Matching: namespace, pod-name prefix, labels and container (all optional).
    `times`: how many container starts it affects (None: all).
    """

    kind: str
    namespace: str | None = None
    name_prefix: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    container: str | None = None
    after: float = 0.0
    exit_code: int = 1
    times: int | None = None
    rate: float = 0.0
    status: int = 500
    id: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown pod fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        self.rate, self.status = float(self.rate), int(self.status)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError for values no fault can have (an http-errors rate above 1...)."""
        if not 0.0 <= float(self.rate) <= 1.0:
            raise ValueError(f"pod fault rate must be within 0..1, not {self.rate!r}")
        if not 100 <= int(self.status) <= 599:
            raise ValueError(f"pod fault status must be an HTTP status, not {self.status!r}")
        if self.kind == "http-errors" and self.times is not None:
            raise ValueError("an http-errors fault holds until cleared; it takes no times")

    def matches(self, pod: Mapping[str, Any], container: str) -> bool:
        meta = pod.get("metadata") or {}
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        if not str(meta.get("name", "")).startswith(self.name_prefix):
            return False
        labels = meta.get("labels") or {}
        if any(labels.get(k) != v for k, v in self.labels.items()):
            return False
        return self.container is None or self.container == container

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PodFault:
        allowed = {
            "kind",
            "namespace",
            "name_prefix",
            "labels",
            "container",
            "after",
            "exit_code",
            "times",
            "rate",
            "status",
        }
        aliases = {"namePrefix": "name_prefix", "exitCode": "exit_code"}
        kwargs = {aliases.get(k, k): v for k, v in data.items()}
        unknown = set(kwargs) - allowed
        if unknown:
            raise ValueError(f"unknown pod fault fields: {sorted(unknown)}")
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_annotation(text: str) -> PodFault | None:
    """`kind[:key=value,...]`, keys `after`, `code`, `container`, `rate`, `status`.

    Invalid text: no fault.
    """
    kind, _, rest = text.strip().partition(":")
    try:
        fault = PodFault(kind=kind.strip())
        for part in filter(None, (p.strip() for p in rest.split(","))):
            k, _, v = part.partition("=")
            if k == "after":
                fault.after = float(v)
            elif k == "code":
                fault.exit_code = int(v)
            elif k == "container":
                fault.container = v
            elif k == "rate":
                fault.rate = float(v)
            elif k == "status":
                fault.status = int(v)
        fault.validate()
    except ValueError:
        return None
    return fault


class PodFaults:
    """The registry of active faults (thread-safe: tests may add from another thread)."""

    def __init__(self) -> None:
        self._faults: list[PodFault] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, fault: PodFault | None = None, /, **kwargs: Any) -> PodFault:
        fault = fault or PodFault(**kwargs)
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def clear(self, fault_id: int | None = None) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if fault_id is not None and f.id != fault_id]

    def list(self) -> list[PodFault]:
        with self._lock:
            return list(self._faults)

    def active(self, pod: Mapping[str, Any], container: str, kind: str) -> PodFault | None:
        """The fault of `kind` that holds for this container now (nothing is counted).

        The pod's annotation comes first, then the registry's faults in the order added.
        """
        annotation = ((pod.get("metadata") or {}).get("annotations") or {}).get(FAULT_ANNOTATION)
        if annotation:
            fault = parse_annotation(annotation)
            if fault and fault.kind == kind and fault.container in (None, container):
                return fault
        with self._lock:
            for f in self._faults:
                if f.kind == kind and f.matches(pod, container):
                    return f
        return None

    def take(
        self, pod: Mapping[str, Any], container: str, kinds: tuple[str, ...]
    ) -> PodFault | None:
        """The first fault of `kinds` for this container start (counts against `times`)."""
        annotation = ((pod.get("metadata") or {}).get("annotations") or {}).get(FAULT_ANNOTATION)
        if annotation:
            fault = parse_annotation(annotation)
            if fault and fault.kind in kinds and fault.container in (None, container):
                return fault
        with self._lock:
            for f in self._faults:
                if f.kind in kinds and f.matches(pod, container) and f.times != 0:
                    if f.times is not None:
                        f.times -= 1
                    return f
        return None
