"""The registry of served resources: built-in kinds and those that CRDs add.

One :class:`ResourceKind` describes a resource the way discovery, routing, storage and
tables all need it. Objects are stored per resource (`group/plural`), independent of the
version a client used: CRD versions share storage (conversion strategy `None`), exactly
as a real apiserver does without a conversion webhook.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUILTIN_KINDS", "Registry", "ResourceKind", "version_priority"]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ScalePaths:
    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = ".status.selector"


@dataclass(frozen=True)
class ResourceKind:
    """One served resource; `versions[0]` is the storage version."""

    group: str
    versions: tuple[str, ...]
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status: bool = False
    scale: ScalePaths | None = None
    has_generation: bool = False
    builtin: bool = True
    printer_columns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    preserve_unknown: bool = True

    @property
    def key(self) -> str:
        return f"{self.group}/{self.plural}"

    @property
    def resource_name(self) -> str:
        """How messages name the resource: `widgets.example.com`, or `pods` for core."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_version(self) -> str:
        return self.versions[0]

    def api_version(self, version: str | None = None) -> str:
        v = version or self.storage_version
        return f"{self.group}/{v}" if self.group else v

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


def _k(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    scale: bool = False,
    generation: bool = False,
    categories: tuple[str, ...] = (),
) -> ResourceKind:
    return ResourceKind(
        group=group,
        versions=(version,),
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        status=status,
        scale=ScalePaths() if scale else None,
        has_generation=generation,
    )


BUILTIN_KINDS: tuple[ResourceKind, ...] = (
    _k("", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",), status=True),
    _k("", "v1", "pods", "Pod", short=("po",), status=True, categories=("all",)),
    _k("", "v1", "services", "Service", short=("svc",), status=True, categories=("all",)),
    _k("", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _k("", "v1", "secrets", "Secret"),
    _k("", "v1", "events", "Event", short=("ev",)),
    _k("events.k8s.io", "v1", "events", "Event", short=("ev",)),
    _k(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short=("deploy",),
        status=True,
        scale=True,
        generation=True,
        categories=("all",),
    ),
    _k(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short=("rs",),
        status=True,
        scale=True,
        generation=True,
        categories=("all",),
    ),
    _k("batch", "v1", "jobs", "Job", status=True, generation=True, categories=("all",)),
    _k(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short=("hpa",),
        status=True,
        generation=True,
        categories=("all",),
    ),
    _k("coordination.k8s.io", "v1", "leases", "Lease"),
    # Stored so that Helm charts install as on a real cluster; localkube does not authorize
    # requests (every client is admin), bind volumes, enforce disruption budgets or
    # network policies.
    _k("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _k("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True),
    _k(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        short=("pdb",),
        status=True,
        generation=True,
    ),
    _k("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",)),
    _k("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _k("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _k("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _k(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
    ),
    _k(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short=("crd", "crds"),
        status=True,
        generation=True,
    ),
)

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """Sort key, highest first as Kubernetes orders versions: GA > beta > alpha, then number."""
    m = _VERSION_RE.match(version)
    if not m:
        return (0, 0, 0)
    stage = {"alpha": 1, "beta": 2, None: 3}[m.group(2)]
    return (stage, int(m.group(1)), int(m.group(3) or 0))


class Registry:
    """Lookup of served resources by URL parts, by kind, and by group."""

    def __init__(self) -> None:
        self._kinds: dict[str, ResourceKind] = {}
        self.generation = 0  # bumped on every change; feeds the OpenAPI hash
        for k in BUILTIN_KINDS:
            self.add(k)

    def add(self, kind: ResourceKind) -> None:
        self._kinds[kind.key] = kind
        self.generation += 1

    def remove(self, key: str) -> ResourceKind | None:
        self.generation += 1
        return self._kinds.pop(key, None)

    def get(self, key: str) -> ResourceKind | None:
        return self._kinds.get(key)

    def all(self) -> list[ResourceKind]:
        return list(self._kinds.values())

    def lookup(self, group: str, version: str, plural: str) -> ResourceKind | None:
        k = self._kinds.get(f"{group}/{plural}")
        if k is None or version not in k.versions:
            return None
        return k

    def by_kind(self, api_version: str, kind: str) -> ResourceKind | None:
        group, _, version = api_version.rpartition("/")
        for k in self._kinds.values():
            if k.group == group and k.kind == kind and version in k.versions:
                return k
        return None

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions, preferred (highest priority) first."""
        out: dict[str, set[str]] = {}
        for k in self._kinds.values():
            out.setdefault(k.group, set()).update(k.versions)
        return {g: sorted(vs, key=version_priority, reverse=True) for g, vs in out.items()}

    def in_group_version(self, group: str, version: str) -> list[ResourceKind]:
        return [k for k in self._kinds.values() if k.group == group and version in k.versions]
