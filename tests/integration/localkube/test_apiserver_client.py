"""Python `kubernetes` client checklist (spec §14, Python items 1-4)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .apiserver_fixtures import WIDGET, WIDGET_CRD, Kube, kube

__all__ = ["kube"]

G, V, P = "example.com", "v1", "widgets"


@pytest.fixture(scope="module")
def api(kube: Kube) -> Iterator[Any]:
    api_client = kube.api_client()
    ext = client.ApiextensionsV1Api(api_client)
    ext.create_custom_resource_definition(yaml.safe_load(WIDGET_CRD))
    yield api_client
    api_client.close()


def _widget(name: str, size: int = 1) -> dict[str, Any]:
    return yaml.safe_load(WIDGET.format(name=name, size=size))


def test_duplicate_create_is_409_already_exists(api: Any) -> None:
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(G, V, "default", P, _widget("p1"))
    with pytest.raises(ApiException) as err:
        co.create_namespaced_custom_object(G, V, "default", P, _widget("p1"))
    assert err.value.status == 409 and err.value.reason == "Conflict"
    assert '"reason":"AlreadyExists"' in err.value.body


def test_dict_patch_is_merge_and_status_patch_changes_only_status(api: Any) -> None:
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(G, V, "default", P, _widget("p2"))
    patched = co.patch_namespaced_custom_object(G, V, "default", P, "p2", {"spec": {"size": 5}})
    assert patched["spec"]["size"] == 5 and patched["spec"]["color"] == "red"
    assert patched["metadata"]["generation"] == 2
    after = co.patch_namespaced_custom_object_status(
        G, V, "default", P, "p2", {"status": {"phase": "Ready"}, "spec": {"size": 9}}
    )
    assert after["status"] == {"phase": "Ready"}
    assert after["spec"]["size"] == 5 and after["metadata"]["generation"] == 2


def test_typed_status_patch_changes_only_status(api: Any) -> None:
    core = client.CoreV1Api(api)
    pod = {
        "metadata": {"name": "s1"},
        "spec": {"containers": [{"name": "c", "image": "x", "command": ["true"]}]},
    }
    core.create_namespaced_pod("default", pod)
    out = core.patch_namespaced_pod_status(
        "s1", "default", {"status": {"phase": "Running"}, "metadata": {"labels": {"x": "y"}}}
    )
    assert out.status.phase == "Running" and not out.metadata.labels


def test_json_patch_with_wrong_rv_test_is_422_and_stale_replace_is_409(api: Any) -> None:
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map("default", {"metadata": {"name": "c1"}, "data": {}})
    rv = cm.metadata.resource_version
    body = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "add", "path": "/data/a", "value": "b"},
    ]
    with pytest.raises(ApiException) as err:
        core.patch_namespaced_config_map("c1", "default", body)
    assert err.value.status == 422
    body[0]["value"] = rv
    assert core.patch_namespaced_config_map("c1", "default", body).data == {"a": "b"}
    cm.data = {"stale": "yes"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("c1", "default", cm)
    assert err.value.status == 409 and "the object has been modified" in err.value.body


def test_watch_from_list_rv_yields_modified_in_order_and_410_when_compacted(
    api: Any, kube: Kube
) -> None:
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(G, V, "default", P, _widget("p3"))
    listed = co.list_namespaced_custom_object(G, V, "default", P)
    list_rv = listed["metadata"]["resourceVersion"]
    for size in (2, 3, 4):
        co.patch_namespaced_custom_object(G, V, "default", P, "p3", {"spec": {"size": size}})
    seen = []
    w = watch.Watch()
    for ev in w.stream(
        co.list_namespaced_custom_object, G, V, "default", P,
        resource_version=list_rv, timeout_seconds=5,
    ):  # fmt: skip
        seen.append((ev["type"], int(ev["object"]["metadata"]["resourceVersion"])))
        if len(seen) == 3:
            w.stop()
    assert [t for t, _ in seen] == ["MODIFIED"] * 3
    assert [rv for _, rv in seen] == sorted(rv for _, rv in seen)
    kube.server.call(lambda: kube.server.server.faults.expire_watches("widgets"))
    with pytest.raises(ApiException) as err:
        for _ in watch.Watch().stream(
            co.list_namespaced_custom_object, G, V, "default", P,
            resource_version=list_rv, timeout_seconds=5,
        ):  # fmt: skip
            pass
    assert err.value.status == 410


def _job_with_pods(api: Any, name: str) -> list[str]:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    job = batch.create_namespaced_job(
        "default",
        {
            "metadata": {"name": name},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "x", "command": ["true"]}],
                    }
                }
            },
        },
    )
    owner = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": name,
        "uid": job.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    names = []
    for i in range(2):
        pod = core.create_namespaced_pod(
            "default",
            {
                "metadata": {
                    "name": f"{name}-{i}",
                    "labels": {"job-name": name},
                    "ownerReferences": [owner],
                },
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        )
        names.append(pod.metadata.name)
    return names


def _pods(api: Any, name: str) -> list[Any]:
    return (
        client.CoreV1Api(api)
        .list_namespaced_pod("default", label_selector=f"job-name={name}")
        .items
    )


def test_job_delete_background_removes_pods_and_default_orphans_them(api: Any) -> None:
    batch = client.BatchV1Api(api)
    _job_with_pods(api, "j-bg")
    batch.delete_namespaced_job("j-bg", "default", propagation_policy="Background")
    deadline = time.monotonic() + 5
    while _pods(api, "j-bg") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _pods(api, "j-bg") == []
    _job_with_pods(api, "j-or")
    batch.delete_namespaced_job("j-or", "default")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            batch.read_namespaced_job("j-or", "default")
        except ApiException as e:
            assert e.status == 404
            break
        time.sleep(0.05)
    pods = _pods(api, "j-or")
    assert len(pods) == 2 and all(not p.metadata.owner_references for p in pods)


def test_read_pod_log_returns_the_kubelet_file(api: Any, kube: Kube) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        "default",
        {"metadata": {"name": "logger"}, "spec": {"containers": [{"name": "main", "image": "x"}]}},
    )
    folder = kube.tmp / "logs" / "default" / "logger"
    folder.mkdir(parents=True)
    (folder / "main.log").write_text("one\ntwo\nthree\n")
    assert core.read_namespaced_pod_log("logger", "default") == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log("logger", "default", tail_lines=1) == "three\n"


def test_follow_log_streams_until_the_pod_finishes(api: Any, kube: Kube) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        "default",
        {
            "metadata": {"name": "follower"},
            "spec": {"containers": [{"name": "main", "image": "x"}]},
        },
    )
    folder = kube.tmp / "logs" / "default" / "follower"
    folder.mkdir(parents=True)
    log = folder / "main.log"
    log.write_text("start\n")

    def finish() -> None:
        time.sleep(0.5)
        with log.open("a") as f:
            f.write("more\n")
        time.sleep(0.5)
        core.patch_namespaced_pod_status("follower", "default", {"status": {"phase": "Succeeded"}})

    import threading

    thread = threading.Thread(target=finish)
    thread.start()
    start = time.monotonic()
    text = core.read_namespaced_pod_log("follower", "default", follow=True, _request_timeout=10)
    thread.join()
    assert text == "start\nmore\n" and 0.9 < time.monotonic() - start < 5
