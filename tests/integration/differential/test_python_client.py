"""The Python part of the checklist (spec §14, Python 1-4) with the `kubernetes` client."""

from __future__ import annotations

from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from .conftest import Observation, Pair
from .manifests import job, widget
from .probing import Side, shape_message

GROUP, VERSION, PLURAL = "example.com", "v1", "widgets"


def _error(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, str]:
    try:
        fn(*args, **kwargs)
    except ApiException as e:
        return e.status, shape_message(str(e.reason))
    return 0, "no error"


def test_python_client_writes(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        custom = client.CustomObjectsApi(side.api)
        core = client.CoreV1Api(side.api)
        ns, obs = pair.ns, {}
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, widget("w1"))
        obs["duplicate create"] = _error(
            custom.create_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, widget("w1")
        )
        got = custom.patch_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, "w1", {"spec": {"size": 5}}
        )
        obs["dict patch"] = [got["spec"], got["metadata"]["generation"]]
        got = custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, ns, PLURAL, "w1", {"status": {"phase": "Ready"}}
        )
        obs["status patch"] = [got["spec"]["size"], got["status"], got["metadata"]["generation"]]
        core.create_namespaced_config_map(ns, {"metadata": {"name": "c"}, "data": {"a": "1"}})
        cm = core.read_namespaced_config_map("c", ns)
        stale = int(cm.metadata.resource_version) - 1
        obs["json patch with a wrong resourceVersion test"] = _error(
            core.patch_namespaced_config_map,
            "c",
            ns,
            [
                {"op": "test", "path": "/metadata/resourceVersion", "value": str(stale)},
                {"op": "replace", "path": "/data/a", "value": "2"},
            ],
        )
        core.patch_namespaced_config_map("c", ns, {"data": {"a": "3"}})
        obs["stale replace"] = _error(core.replace_namespaced_config_map, "c", ns, cm)
        obs["delete answer"] = type(core.delete_namespaced_config_map("c", ns)).__name__
        return obs

    pair.check("python-writes", observe)


def test_python_client_watch(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        custom = client.CustomObjectsApi(side.api)
        ns, obs = pair.ns, {}
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, widget("w1"))
        listed = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
        start = listed["metadata"]["resourceVersion"]
        for size in (4, 5, 6):
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, "w1", {"spec": {"size": size}}
            )
        seen = []
        for event in watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            PLURAL,
            resource_version=start,
            timeout_seconds=3,
        ):
            obj = event["object"]
            seen.append(
                (event["type"], obj["spec"]["size"], int(obj["metadata"]["resourceVersion"]))
            )
        obs["events"] = [(t, size) for t, size, _ in seen]
        obs["in resourceVersion order"] = [r for *_, r in seen] == sorted(r for *_, r in seen)
        if side.name == "localkube":  # kube-apiserver's window starts after RV 2 already
            side.cluster.admin(
                "POST", "/_localkube/faults", {"action": "expire_watches", "resource": "widgets"}
            )
        stream = watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            PLURAL,
            resource_version="2",
            timeout_seconds=3,
        )
        obs["from a compacted resourceVersion"] = _error(list, stream)
        return obs

    pair.check("python-watch", observe)


def test_python_client_job_deletion_and_logs(pair: Pair) -> None:
    def observe(side: Side) -> Observation:
        batch, core = client.BatchV1Api(side.api), client.CoreV1Api(side.api)
        ns, obs = pair.ns, {}
        for name in ("background", "default"):
            batch.create_namespaced_job(ns, job(name, "echo hello; sleep 600"))
        selector = {name: f"job-name={name}" for name in ("background", "default")}

        def pods(name: str) -> list[Any]:
            return list(core.list_namespaced_pod(ns, label_selector=selector[name]).items)

        def running(name: str) -> bool:
            return any(p.status.phase == "Running" for p in pods(name))

        for name in selector:
            side.wait(lambda name=name: running(name), timeout=60, what=f"{name} pod running")
        pod = pods("background")[0].metadata.name
        log = side.wait(lambda: core.read_namespaced_pod_log(pod, ns), what="pod log")
        obs["log"] = log.strip()
        batch.delete_namespaced_job("background", ns, propagation_policy="Background")
        batch.delete_namespaced_job("default", ns)
        side.wait(lambda: not pods("background"), timeout=60, what="background pods deleted")
        obs["background pods deleted"] = True
        side.wait(
            lambda: (
                not any(j.metadata.name == "default" for j in batch.list_namespaced_job(ns).items)
            ),
            timeout=60,
            what="job gone",
        )
        left = pods("default")
        obs["orphaned pods"] = [len(left), [p.metadata.owner_references for p in left]]
        return obs

    pair.check("python-jobs", observe)
