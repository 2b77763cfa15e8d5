"""Discovery documents: `/version`, `/api`, `/apis`, `/apis/<g>`, resource lists.

kopf finds resources (and whether they have a status subresource) only from these
lists, and treats a 404 on `/apis/<g>/<v>` as "that group/version is gone"; kubectl
caches them under `$KUBECACHEDIR`. Legacy JSON discovery is served; kubectl falls back
to it from the aggregated form it asks for first.
"""

from __future__ import annotations

from typing import Any

from .kinds import ALL_VERBS, Registry, ResourceKind

__all__ = ["api_group", "api_groups", "api_versions", "resource_list", "version_info"]

SUB_VERBS = ["get", "patch", "update"]
# kube-apiserver lists a custom resource's verbs in this order (apiextensions-apiserver)
CR_VERBS = ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]
# where kube-apiserver's entry differs from the defaults: namespaces have no
# deletecollection, and CRDs are in the `api-extensions` category
_VERBS = {"/namespaces": [v for v in ALL_VERBS if v != "deletecollection"]}
_CATEGORIES = {"apiextensions.k8s.io/customresourcedefinitions": ["api-extensions"]}


def version_info() -> dict[str, str]:
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-localkube",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group(name: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": gvs,
        "preferredVersion": gvs[0],
    }


def api_groups(registry: Registry) -> dict[str, Any]:
    groups = [
        {k: v for k, v in api_group(g, vs).items() if k not in ("kind", "apiVersion")}
        for g, vs in sorted(registry.group_versions().items())
        if g
    ]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _entries(kind: ResourceKind) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": kind.plural,
        "singularName": kind.singular,
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": _VERBS.get(kind.key, list(ALL_VERBS)) if kind.builtin else list(CR_VERBS),
    }
    if kind.short_names:
        main["shortNames"] = list(kind.short_names)
    categories = list(kind.categories) or _CATEGORIES.get(kind.key)
    if categories:
        main["categories"] = categories
    out = [main]
    if kind.status:
        out.append(
            {
                "name": f"{kind.plural}/status",
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": SUB_VERBS,
            }
        )
    if kind.scale is not None:
        out.append(
            {
                "name": f"{kind.plural}/scale",
                "singularName": "",
                "namespaced": kind.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": SUB_VERBS,
            }
        )
    if kind.key == "/namespaces":
        out.append(
            {
                "name": "namespaces/finalize",
                "singularName": "",
                "namespaced": False,
                "kind": "Namespace",
                "verbs": ["update"],
            }
        )
    if kind.key == "/pods":
        out.append(
            {
                "name": "pods/log",
                "singularName": "",
                "namespaced": True,
                "kind": "Pod",
                "verbs": ["get"],
            }
        )
    return out


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """The APIResourceList of a group/version, or None when it is not served."""
    kinds = registry.in_group_version(group, version)
    if not kinds:
        return None
    resources = [e for k in sorted(kinds, key=lambda k: k.plural) for e in _entries(k)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
