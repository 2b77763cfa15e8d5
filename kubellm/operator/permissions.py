"""Every Kubernetes API permission the operator needs, as data, in one place.

Least privilege is only checkable when the grant and the need are written down once and
compared by machine. The Helm chart's RBAC template (``charts/kubellm/templates/rbac.yaml``)
spells the rules out by hand, so a reader of the chart sees exactly what is granted; the
chart tests render it and require the rendered rules to equal this list, verb for verb; the
end-to-end tests record the operator's real API calls and require them to be a subset of it.
A new call in the operator therefore fails a test until it is added here *and* in the chart.

Why each grant exists:

- ``llms``/``llms/status``: the resource it reconciles; status is written through the
  status subresource only. kopf patches the object itself for its finalizer and progress
  annotations.
- Jobs (training, load tests), Deployments and Services (serving), ConfigMaps (inputs
  rendered for child pods), HorizontalPodAutoscalers: the children, created or patched by name
  and deleted on retirement. ``update`` is never used: children are patched.
- Pods (read) and ``pods/log`` (get): a failed Job's pod explains the failure when its
  termination message is missing.
- PersistentVolumeClaims (create only): the checkpoint claim of ``spec.training.checkpoints``
  (size), created with its training Job and removed with the LLM by garbage collection.
- Events, in both API groups: kopf posts ``core/v1`` Events, clients of the newer API post
  ``events.k8s.io/v1`` ones; ``patch`` lets a repeated event be counted, not duplicated.
- CustomResourceDefinitions (read, cluster scoped): kopf discovers the resources it serves
  and watches CRDs so that it notices ours being installed or upgraded. There is no
  namespaced way to read a CRD, so even the namespaced install keeps a small ClusterRole.
- Namespaces (read, cluster scoped): with a list of namespaces to watch, kopf lists and
  watches namespaces to notice one created or recreated after start-up.
- kopf peering objects (only with more than one replica): ``ClusterKopfPeering`` when the
  operator watches all namespaces, ``KopfPeering`` in each watched namespace otherwise.

Not granted, on purpose: Secrets (the webhook secret and MLflow credentials reach the pod as
environment variables from ``secretKeyRef``/``envFrom``, resolved by the kubelet), ReplicaSets
(Deployments are enough), Leases (kopf peering, not leader election, keeps replicas apart).
"""

from __future__ import annotations

from dataclasses import dataclass

from kubellm.api.identity import GROUP, PLURAL

__all__ = [
    "CLUSTER_PEERING_PERMISSIONS",
    "NAMESPACED_PEERING_PERMISSIONS",
    "OPERATOR_PERMISSIONS",
    "Permission",
    "as_triples",
    "peering_permissions",
]

_CRUD = ("get", "list", "watch", "create", "patch", "delete")
_READ = ("get", "list", "watch")
_EMIT = ("create", "patch")


@dataclass(frozen=True)
class Permission:
    """One RBAC grant: ``verbs`` on ``resource`` (``"pods/log"`` for a subresource).

    ``group`` is the API group (``""`` for the core group). ``cluster_scoped`` grants must sit
    in a ClusterRole even in the namespaced install, because the resource has no namespace.
    """

    group: str
    resource: str
    verbs: tuple[str, ...]
    cluster_scoped: bool = False


OPERATOR_PERMISSIONS: tuple[Permission, ...] = (
    Permission(GROUP, PLURAL, ("get", "list", "watch", "patch", "update")),
    Permission(GROUP, f"{PLURAL}/status", ("get", "patch", "update")),
    Permission("batch", "jobs", _CRUD),
    Permission("apps", "deployments", _CRUD),
    Permission("", "services", _CRUD),
    Permission("", "configmaps", _CRUD),
    Permission("", "pods", _READ),
    Permission("", "pods/log", ("get",)),
    Permission("", "persistentvolumeclaims", ("create",)),
    Permission("autoscaling", "horizontalpodautoscalers", _CRUD),
    Permission("", "events", _EMIT),
    Permission("events.k8s.io", "events", _EMIT),
    Permission("apiextensions.k8s.io", "customresourcedefinitions", _READ, cluster_scoped=True),
    Permission("", "namespaces", _READ, cluster_scoped=True),
)
"""What the operator calls, whatever the install mode."""

_PEERING_VERBS = ("get", "list", "watch", "patch")

CLUSTER_PEERING_PERMISSIONS: tuple[Permission, ...] = (
    Permission("kopf.dev", "clusterkopfpeerings", _PEERING_VERBS, cluster_scoped=True),
)
"""Added when replicas > 1 and the operator watches all namespaces."""

NAMESPACED_PEERING_PERMISSIONS: tuple[Permission, ...] = (
    Permission("kopf.dev", "kopfpeerings", _PEERING_VERBS),
)
"""Added when replicas > 1 and the operator watches a list of namespaces."""


def peering_permissions(*, peering: bool, all_namespaces: bool) -> tuple[Permission, ...]:
    """The peering grants for an install: none for one replica, else by the watch scope."""
    if not peering:
        return ()
    return CLUSTER_PEERING_PERMISSIONS if all_namespaces else NAMESPACED_PEERING_PERMISSIONS


def as_triples(permissions: tuple[Permission, ...]) -> set[tuple[str, str, str]]:
    """Flatten grants to ``(group, resource, verb)`` triples, the unit RBAC compares in."""
    return {(p.group, p.resource, verb) for p in permissions for verb in p.verbs}
