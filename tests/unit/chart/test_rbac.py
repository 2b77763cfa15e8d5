"""The operator's RBAC is exactly kubellm/operator/permissions.py: no wildcards, no extras.

templates/rbac.yaml spells the rules out by hand; these tests compare what it renders, in
every install mode, with the one list in Python that the end-to-end tests compare with the
operator's real API calls. The gateway (templates/gateway.yaml) has roles of its own, bound to
its own ServiceAccount: reads of LLMs, Services and Pods, nothing more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubellm.operator.permissions import (
    OPERATOR_PERMISSIONS,
    Permission,
    as_triples,
    peering_permissions,
)
from tests.unit.chart.conftest import CHART, NAMESPACE, RELEASE, TEAMS, Rendering, run_helm

ROLE_KINDS = {"ClusterRole", "Role"}
GATEWAY = f"{RELEASE}-gateway"
GATEWAY_READS = {
    (group, resource, verb)
    for group, resource in (("kubellm.dev", "llms"), ("", "services"), ("", "pods"))
    for verb in ("get", "list", "watch")
}


def _is_gateway(doc: dict[str, Any]) -> bool:
    return doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "gateway"


def _operator_docs(rendering: Rendering, kind: str) -> list[dict[str, Any]]:
    return [d for d in rendering.of_kind(kind) if not _is_gateway(d)]


# Verbs that would let the operator grant itself more than this list.
ESCALATING = {"bind", "escalate", "impersonate", "*"}


def _triples(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _expected(rendering: Rendering) -> tuple[tuple[Permission, ...], tuple[Permission, ...]]:
    """(cluster-wide grants, per-namespace grants) the mode of ``rendering`` calls for."""
    watched = rendering.values.get("watchNamespaces", [])
    peering = peering_permissions(
        peering=rendering.values.get("replicaCount", 1) > 1, all_namespaces=not watched
    )
    wanted = OPERATOR_PERMISSIONS + peering
    if not rendering.values.get("rbac", {}).get("namespaced"):
        return wanted, ()
    return (
        tuple(p for p in wanted if p.cluster_scoped),
        tuple(p for p in wanted if not p.cluster_scoped),
    )


def test_no_wildcard_or_escalating_verb_anywhere(rendering: Rendering) -> None:
    for role in rendering.docs:
        if role["kind"] not in ROLE_KINDS:
            continue
        for rule in role["rules"]:
            assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule  # no URLs, names
            for field in ("apiGroups", "resources", "verbs"):
                assert all("*" not in item for item in rule[field]), (role["kind"], rule)
            assert not ESCALATING & set(rule["verbs"]), rule


def test_cluster_role_grants_exactly_the_operator_permissions(rendering: Rendering) -> None:
    cluster, _ = _expected(rendering)
    role = rendering.one("ClusterRole", RELEASE)
    assert _triples(role) == as_triples(cluster)


def test_namespaced_mode_grants_the_rest_per_watched_namespace(rendering: Rendering) -> None:
    _, namespaced = _expected(rendering)
    roles = _operator_docs(rendering, "Role")
    if not namespaced:
        assert roles == [] and _operator_docs(rendering, "RoleBinding") == []
        return
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(TEAMS)
    for role in roles:
        assert _triples(role) == as_triples(namespaced), role["metadata"]["namespace"]


def test_namespaced_mode_keeps_only_cluster_scoped_reads_cluster_wide(
    rendering: Rendering,
) -> None:
    if not rendering.values.get("rbac", {}).get("namespaced"):
        return
    granted = _triples(rendering.one("ClusterRole", RELEASE))
    assert {resource for _, resource, _ in granted} == {"customresourcedefinitions", "namespaces"}
    assert {verb for _, _, verb in granted} == {"get", "list", "watch"}


def test_bindings_tie_each_role_to_its_own_service_account(rendering: Rendering) -> None:
    account = rendering.one("ServiceAccount", RELEASE)["metadata"]
    pod_account = rendering.operator["spec"]["template"]["spec"]["serviceAccountName"]
    assert pod_account == account["name"]
    subject = {"kind": "ServiceAccount", "name": account["name"], "namespace": NAMESPACE}
    gateway = {"kind": "ServiceAccount", "name": GATEWAY, "namespace": NAMESPACE}
    roles = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in (
        d for d in rendering.docs if d["kind"] in ROLE_KINDS)}  # fmt: skip
    bindings = rendering.of_kind("ClusterRoleBinding") + rendering.of_kind("RoleBinding")
    assert len(bindings) == len(roles)
    for binding in bindings:
        assert binding["subjects"] == [gateway if _is_gateway(binding) else subject]
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        assert (ref["kind"], namespace, ref["name"]) in roles


def test_gateway_only_reads_llms_services_and_pods(rendering: Rendering) -> None:
    roles = [d for d in rendering.docs if d["kind"] in ROLE_KINDS and _is_gateway(d)]
    if rendering.values.get("gateway", {}).get("enabled", True) is False:
        assert roles == []
        return
    watched = rendering.values.get("watchNamespaces", [])
    if rendering.values.get("rbac", {}).get("namespaced"):
        assert sorted(r["metadata"]["namespace"] for r in roles) == sorted(watched)
        assert {r["kind"] for r in roles} == {"Role"}
    else:
        assert [(r["kind"], r["metadata"]["name"]) for r in roles] == [("ClusterRole", GATEWAY)]
    for role in roles:
        assert _triples(role) == GATEWAY_READS
    pod = next(d for d in rendering.of_kind("Deployment") if d["metadata"]["name"] == GATEWAY)
    assert pod["spec"]["template"]["spec"]["serviceAccountName"] == GATEWAY


def test_operator_reads_no_secrets_in_any_mode(rendering: Rendering) -> None:
    for role in rendering.docs:
        if role["kind"] in ROLE_KINDS:
            assert not any(resource.startswith("secrets") for _, resource, _ in _triples(role))


def test_permission_list_has_no_wildcard_and_no_duplicate() -> None:
    everything = OPERATOR_PERMISSIONS + peering_permissions(peering=True, all_namespaces=True)
    everything += peering_permissions(peering=True, all_namespaces=False)
    keys = [(p.group, p.resource) for p in everything]
    assert len(keys) == len(set(keys))
    for p in everything:
        assert "*" not in p.resource and "*" not in p.group and "*" not in p.verbs
        assert len(set(p.verbs)) == len(p.verbs)


def test_rbac_create_false_renders_no_rbac(tmp_path: Path) -> None:
    result = run_helm(
        "template", RELEASE, str(CHART), "-n", NAMESPACE,
        values={"rbac": {"create": False}}, tmp=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "kind: ClusterRole" not in result.stdout and "kind: Role" not in result.stdout


def test_peering_grants_and_shipped_crds_name_the_resources_kopf_uses() -> None:
    from kopf._cogs.structs import references  # private, but the names are kopf's contract

    for selector, permissions in (
        (references.CLUSTER_PEERINGS_K, peering_permissions(peering=True, all_namespaces=True)),
        (references.NAMESPACED_PEERINGS_K, peering_permissions(peering=True, all_namespaces=False)),
    ):
        (permission,) = permissions
        assert (permission.group, permission.resource) == (selector.group, selector.any_name)
        assert (
            f"{selector.any_name}.{selector.group}"
            in (CHART / "crds/kopf-peerings.yaml").read_text()
        )
