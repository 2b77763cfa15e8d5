"""Checklist items on workloads (kubectl 10-13): rollout, scale, Jobs and their logs, delete
with a finalizer, garbage collection by propagation policy.

Here the controllers differ too: localkube's own Deployment, ReplicaSet, Job and garbage
collector against kube-controller-manager's. Both clusters run the pods with localkube's
kubelet (processes on this machine), so what is compared is what the controllers and the
API make of the same pods: statuses, conditions, counts and kubectl's output.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from localkube.testing.localkube import kubectl_binary

from .conftest import Observation, Pair
from .manifests import deployment, job, widget
from .probing import JSON_PATCH, Side, lines

DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments"
REPLICASETS = "/apis/apps/v1/namespaces/{ns}/replicasets"
PODS = "/api/v1/namespaces/{ns}/pods"
JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"


def _owned(side: Side, path: str, uid: str) -> list[dict[str, Any]]:
    return [
        o
        for o in side.ok("GET", path)["items"]
        if any(r.get("uid") == uid for r in o["metadata"].get("ownerReferences") or [])
    ]


def _running(side: Side, ns: str, app: str) -> int:
    pods = side.ok("GET", PODS.format(ns=ns), query={"labelSelector": f"app={app}"})["items"]
    return sum(
        1
        for p in pods
        if (p.get("status") or {}).get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
    )


def test_rollout_status_and_scale(pair: Pair) -> None:
    def observe(side: Side) -> Observation:
        ns = ("-n", pair.ns)
        obs: Observation = {}
        out = side.kubectl(*ns, "apply", "-f", "-", input=json.dumps(deployment("web")))
        obs["apply"] = lines(out.stdout)
        out = side.kubectl(*ns, "rollout", "status", "deploy/web", "--timeout=90s", timeout=120)
        obs["rollout"] = (out.returncode, lines(out.stdout)[-1:])
        out = side.kubectl(*ns, "scale", "deploy/web", "--replicas=3")
        obs["scale"] = (out.returncode, lines(out.stdout))
        out = side.kubectl(*ns, "rollout", "status", "deploy/web", "--timeout=90s", timeout=120)
        obs["rollout after scale"] = (out.returncode, lines(out.stdout)[-1:])
        side.wait(lambda: _running(side, pair.ns, "web") == 3, timeout=60, what="3 running pods")
        obs["running pods"] = _running(side, pair.ns, "web")
        got = side.ok("GET", DEPLOYMENTS.format(ns=pair.ns) + "/web")
        status = got["status"]
        obs["status"] = {
            k: status.get(k) for k in ("replicas", "readyReplicas", "availableReplicas")
        }
        obs["conditions"] = sorted(
            (c["type"], c["status"], c["reason"]) for c in status.get("conditions") or []
        )
        obs["observedGeneration"] = (
            status.get("observedGeneration") == got["metadata"]["generation"]
        )
        scale = side.ok("GET", DEPLOYMENTS.format(ns=pair.ns) + "/web/scale")
        obs["scale subresource"] = [
            scale["kind"],
            scale["apiVersion"],
            scale["spec"],
            scale["status"],
        ]
        return obs

    pair.check("rollout", observe)


def test_jobs_complete_fail_and_log(pair: Pair) -> None:
    def observe(side: Side) -> Observation:
        jobs = JOBS.format(ns=pair.ns)
        script = "echo hi; echo done > ${KUBELLM_TERMINATION_LOG:-/dev/termination-log}"
        side.ok("POST", jobs, job("j1", script))
        side.ok("POST", jobs, job("j2", "echo failing; exit 1", backoff_limit=1))
        side.ok("POST", jobs, job("j3", "echo one; sleep 3; echo two"))
        pods = PODS.format(ns=pair.ns)
        side.wait(
            lambda: any(
                p["status"].get("phase") == "Running"
                for p in side.ok("GET", pods, query={"labelSelector": "job-name=j3"})["items"]
            ),
            timeout=60,
            what="j3 running",
        )
        follow = side.kubectl("-n", pair.ns, "logs", "-f", "job/j3")

        def finished(name: str) -> dict[str, Any] | None:
            got: dict[str, Any] = side.ok("GET", f"{jobs}/{name}")
            conds = {c["type"] for c in (got.get("status") or {}).get("conditions") or []}
            return got if conds & {"Complete", "Failed"} else None

        obs: Observation = {}
        for name in ("j1", "j2"):
            got = side.wait(lambda name=name: finished(name), timeout=120, what=f"job {name}")
            st = got["status"]
            obs[f"{name} conditions"] = sorted(
                (c["type"], c["status"], c.get("reason"), c.get("message"))
                for c in st["conditions"]
            )
            obs[f"{name} counts"] = {k: st.get(k) for k in ("succeeded", "failed", "active")}
            obs[f"{name} status fields"] = sorted(st)
            pods = _owned(side, PODS.format(ns=pair.ns), got["metadata"]["uid"])
            obs[f"{name} pod phases"] = sorted(p["status"].get("phase") for p in pods)
            terminated = [
                cs["state"].get("terminated") or {}
                for p in pods
                for cs in p["status"].get("containerStatuses") or []
            ]
            obs[f"{name} terminated"] = sorted(
                (t.get("exitCode"), t.get("reason"), t.get("message")) for t in terminated
            )
        out = side.kubectl("-n", pair.ns, "logs", "job/j1")
        obs["logs job/j1"] = (out.returncode, lines(out.stdout))
        obs["logs -f job/j3"] = (follow.returncode, lines(follow.stdout), lines(follow.stderr))
        return obs

    pair.check("jobs", observe)


def test_kubectl_delete_waits_for_finalizer(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        path = f"/apis/example.com/v1/namespaces/{pair.ns}/widgets"
        side.ok("POST", path, widget("w1", metadata={"finalizers": ["example.com/hold"]}))
        deleting = subprocess.Popen(
            [kubectl_binary(), "-n", pair.ns, "delete", "widget", "w1", "--timeout=60s"],
            env=side.cluster.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)
        waiting = deleting.poll() is None
        remove = [{"op": "remove", "path": "/metadata/finalizers"}]
        side.ok("PATCH", f"{path}/w1", remove, content_type=JSON_PATCH)
        out, err = deleting.communicate(timeout=60)
        got = side.kubectl("-n", pair.ns, "get", "widget", "w1")
        return {
            "waited for the finalizer": waiting,
            "delete": (deleting.returncode, lines(out), lines(err)),
            "get after": (got.returncode, lines(got.stderr)),
        }

    pair.check("delete-finalizer", observe)


def test_garbage_collection_by_propagation_policy(pair: Pair) -> None:
    def observe(side: Side) -> Observation:
        deployments, replicasets = DEPLOYMENTS.format(ns=pair.ns), REPLICASETS.format(ns=pair.ns)
        pods = PODS.format(ns=pair.ns)
        obs: Observation = {}
        for policy in ("Background", "Foreground", "Orphan"):
            name = f"gc-{policy.lower()}"
            d = side.ok("POST", deployments, deployment(name, replicas=2))
            rs = side.wait(lambda d=d: _owned(side, replicasets, d["metadata"]["uid"]), what="rs")[
                0
            ]
            rs_uid = rs["metadata"]["uid"]
            side.wait(lambda rs_uid=rs_uid: len(_owned(side, pods, rs_uid)) == 2, what="2 pods")
            reply = side.call("DELETE", f"{deployments}/{name}", {"propagationPolicy": policy})
            obs[f"{policy} delete"] = [
                reply.code,
                reply.body["kind"],
                (reply.body.get("metadata") or {}).get("finalizers"),
            ]
            side.wait(
                lambda name=name: side.call("GET", f"{deployments}/{name}").code == 404,
                timeout=60,
                what="deployment gone",
            )
            if policy == "Orphan":
                time.sleep(2)
                left = side.ok("GET", f"{replicasets}/{rs['metadata']['name']}")
                obs[f"{policy} rs ownerReferences"] = left["metadata"].get("ownerReferences")
                obs[f"{policy} pods kept"] = len(_owned(side, pods, rs_uid))
            else:
                side.wait(
                    lambda rs=rs, rs_uid=rs_uid: (
                        not _owned(side, pods, rs_uid)
                        and side.call("GET", f"{replicasets}/{rs['metadata']['name']}").code == 404
                    ),
                    timeout=60,
                    what="replica set and pods collected",
                )
                obs[f"{policy} collected"] = True
        return obs

    pair.check("garbage-collection", observe)
