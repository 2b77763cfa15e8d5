"""Lists and namespaces over raw HTTP: selectors, paging, generateName, Lease conflicts, and
a namespace's deletion (Terminating, 403 for new content, gone once its content is)."""

from __future__ import annotations

from typing import Any

from .conftest import Observation, Pair
from .probing import MERGE, Side, status, table

SELECTORS = {
    "equality": "n=0",
    "double equals": "n==1",
    "inequality": "n!=0",
    "in": "n in (0,2)",
    "notin and absent": "n notin (0),!zz",
    "exists": "n",
    "does not exist": "!n",
    "greater than": "n>0",
    "empty value set": "n in ()",
    "spaces": "n = 1",
}
BAD_SELECTORS = {
    "bad syntax": "a=(b",
    "in without parentheses": "a in b",
    "trailing comma": "a,",
    "operator after not": "!a=b",
    "bad value": "a=b@c",
    "bad key": "A/B/C=x",
    "gt not integer": "a>b",
}


def test_label_and_field_selectors(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        cm = f"/api/v1/namespaces/{pair.ns}/configmaps"
        for i in range(3):
            side.ok("POST", cm, {"metadata": {"name": f"c{i}", "labels": {"n": str(i)}}})
        side.ok("POST", cm, {"metadata": {"name": "c-unlabelled"}})
        obs: Observation = {}
        for key, selector in SELECTORS.items():
            items = side.ok("GET", cm, query={"labelSelector": selector})["items"]
            # kube-apiserver also publishes kube-root-ca.crt into every namespace
            obs[f"labels {key}"] = sorted(
                o["metadata"]["name"] for o in items if o["metadata"]["name"].startswith("c")
            )
        named = side.ok("GET", cm, query={"fieldSelector": "metadata.name=c1"})["items"]
        obs["field metadata.name"] = [o["metadata"]["name"] for o in named]
        for path in (
            cm,
            f"/api/v1/namespaces/{pair.ns}/pods",
            f"/apis/batch/v1/namespaces/{pair.ns}/jobs",
            f"/apis/apps/v1/namespaces/{pair.ns}/deployments",
            f"/apis/example.com/v1/namespaces/{pair.ns}/widgets",
        ):
            reply = side.call("GET", path, query={"fieldSelector": "spec.nope=1"})
            obs[f"field unknown {path.rsplit('/', 1)[1]}"] = status(reply)
        obs["field bad operator"] = status(
            side.call("GET", cm, query={"fieldSelector": "metadata.name>1"})
        )
        obs["unknown group"] = [
            side.call("GET", f"/apis/no-such-group.io/v1/namespaces/{pair.ns}/things").code,
            side.call("GET", f"/apis/no-such-group.io/v1/namespaces/{pair.ns}/things").body,
        ]
        for key, selector in BAD_SELECTORS.items():
            obs[f"labels {key}"] = status(side.call("GET", cm, query={"labelSelector": selector}))
        return obs

    pair.check("selectors", observe)


def test_list_paging(pair: Pair) -> None:
    def observe(side: Side) -> Observation:
        cm = f"/api/v1/namespaces/{pair.ns}/configmaps"
        for i in range(3):
            side.ok("POST", cm, {"metadata": {"name": f"c{i}", "labels": {"n": str(i)}}})
        query = {"limit": "2", "labelSelector": "n"}
        first = side.ok("GET", cm, query=query)
        token = first["metadata"].get("continue")
        names = [o["metadata"]["name"] for o in first["items"]]
        if token:
            rest = side.ok("GET", cm, query={**query, "continue": token})
            names += [o["metadata"]["name"] for o in rest["items"]]
        # kube-apiserver adds kube-root-ca.crt to each namespace: count against the full list
        total = len(side.ok("GET", cm)["items"])
        unselected = side.ok("GET", cm, query={"limit": "1"})["metadata"]
        chunked = side.kubectl("-n", pair.ns, "get", "cm", "-l", "n", "--chunk-size=1")
        return {
            "first page": len(first["items"]),
            "continue token": bool(token),
            "all pages": names,
            "remainingItemCount without selector": unselected.get("remainingItemCount")
            == total - 1,
            "kubectl get --chunk-size=1": table(chunked.stdout),
            "bad token": status(side.call("GET", cm, query={"limit": "2", "continue": "x"})),
            "bad token padded": status(
                side.call("GET", cm, query={"limit": "2", "continue": "eyJ2IjoieCJ9=="})
            ),
            "truncated token": status(
                side.call("GET", cm, query={"limit": "2", "continue": "eyJ2Ijo"})
            ),
        }

    pair.check("paging", observe)


def test_names_and_lease_conflict(pair: Pair) -> None:
    def observe(side: Side) -> Observation:
        cm = f"/api/v1/namespaces/{pair.ns}/configmaps"
        made = side.ok("POST", cm, {"metadata": {"generateName": "g-"}})["metadata"]["name"]
        leases = f"/apis/coordination.k8s.io/v1/namespaces/{pair.ns}/leases"
        lease = side.ok(
            "POST", leases, {"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}}
        )
        side.ok("PUT", f"{leases}/l", {**lease, "spec": {"holderIdentity": "b"}})
        stale = {**lease, "spec": {"holderIdentity": "c"}}
        return {
            "generateName": [made[:2], len(made)],
            "no name": status(side.call("POST", cm, {"metadata": {}})),
            "stale lease update": status(side.call("PUT", f"{leases}/l", stale)),
            "namespaces deletecollection": status(
                side.call("DELETE", "/api/v1/namespaces", query={"labelSelector": "none=1"})
            ),
        }

    pair.check("names", observe)


def test_namespace_deletion(pair: Pair, sides: Any) -> None:
    def observe(side: Side) -> Observation:
        ns = f"{pair.ns}-gone"
        side.namespace(ns)
        cm = f"/api/v1/namespaces/{ns}/configmaps"
        side.ok("POST", cm, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
        reply = side.call("DELETE", f"/api/v1/namespaces/{ns}")
        obs: Observation = {"delete": [reply.code, reply.body.get("kind")]}
        got = side.ok("GET", f"/api/v1/namespaces/{ns}")
        obs["phase"] = got["status"]["phase"]
        obs["create while terminating"] = status(
            side.call("POST", cm, {"metadata": {"name": "new"}})
        )
        side.wait(
            lambda: side.call("GET", f"{cm}/held").body["metadata"].get("deletionTimestamp"),
            timeout=60,
            what="content marked for deletion",
        )
        obs["namespace still there"] = side.call("GET", f"/api/v1/namespaces/{ns}").code
        side.ok("PATCH", f"{cm}/held", {"metadata": {"finalizers": None}}, content_type=MERGE)
        side.wait(
            lambda: side.call("GET", f"/api/v1/namespaces/{ns}").code == 404,
            timeout=90,
            what="namespace gone",
        )
        obs["gone"] = True
        return obs

    pair.check("namespace-deletion", observe)
