"""Object rules of the engine (spec §4, §6, §10), driven without HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localkube.apiserver.collecting import Collector, DeleteOptions
from localkube.apiserver.crds import kind_from_crd
from localkube.apiserver.engine import Engine, WriteOptions
from localkube.apiserver.errors import ApiError
from localkube.apiserver.kinds import Registry, ResourceKind
from localkube.apiserver.storage import Store


class World:
    def __init__(self, state_file: Path | None = None) -> None:
        self.store = Store(state_file=state_file)
        self.store.load()
        self.registry = Registry()
        self.engine = Engine(self.store, self.registry, "127.96.0.0/16")
        self.gc = Collector(self.engine)
        self.engine.seed()

    def kind(self, key: str) -> ResourceKind:
        kind = self.registry.get(key)
        assert kind is not None
        return kind

    def create(self, key: str, body: dict[str, Any], ns: str | None = "default") -> dict[str, Any]:
        return self.engine.create(self.kind(key), ns, body, WriteOptions())

    def delete(
        self, key: str, name: str, ns: str | None = "default", **opts: Any
    ) -> dict[str, Any]:
        return self.gc.delete(self.kind(key), ns, name, DeleteOptions(opts, {}))

    def get(self, key: str, name: str, ns: str = "default") -> dict[str, Any] | None:
        return self.store.get(key, ns, name)


@pytest.fixture
def world() -> World:
    return World()


def _deploy(name: str = "web", labels: dict[str, str] | None = None) -> dict[str, Any]:
    labels = labels or {"app": "web"}
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }


def test_generation_bumps_on_spec_change_only_and_noop_keeps_rv(world: World) -> None:
    kind = world.kind("apps/deployments")
    d = world.create("apps/deployments", _deploy())
    assert d["metadata"]["generation"] == 1 and d["spec"]["replicas"] == 1
    rv = d["metadata"]["resourceVersion"]
    same = world.engine.update(kind, "default", "web", d, WriteOptions())
    assert same["metadata"]["resourceVersion"] == rv and world.store.rv == int(rv)
    labelled = dict(d, metadata={**d["metadata"], "labels": {"x": "y"}})
    out = world.engine.update(kind, "default", "web", labelled, WriteOptions())
    assert out["metadata"]["generation"] == 1 and out["metadata"]["resourceVersion"] != rv
    out, _ = world.engine.patch(
        kind,
        "default",
        "web",
        "application/merge-patch+json",
        {"spec": {"replicas": 3}},
        WriteOptions(),
    )
    assert out["metadata"]["generation"] == 2


def test_status_subresource_separates_spec_and_status(world: World) -> None:
    kind = world.kind("apps/deployments")
    world.create("apps/deployments", _deploy())
    merge = "application/merge-patch+json"
    out, _ = world.engine.patch(
        kind, "default", "web", merge, {"status": {"replicas": 5}, "spec": {"replicas": 9}},
        WriteOptions(), "status",
    )  # fmt: skip
    assert out["status"] == {"replicas": 5} and out["spec"]["replicas"] == 1
    assert out["metadata"]["generation"] == 1
    out, _ = world.engine.patch(
        kind, "default", "web", merge, {"status": {"replicas": 0}}, WriteOptions()
    )
    assert out["status"] == {"replicas": 5}


def test_stale_update_conflicts_and_scale_reports_selector(world: World) -> None:
    kind = world.kind("apps/deployments")
    d = world.create("apps/deployments", _deploy())
    world.engine.patch(
        kind,
        "default",
        "web",
        "application/merge-patch+json",
        {"spec": {"replicas": 2}},
        WriteOptions(),
    )
    with pytest.raises(ApiError) as err:
        world.engine.update(kind, "default", "web", d, WriteOptions())
    assert err.value.code == 409 and err.value.reason == "Conflict"
    scale = world.engine.write_scale(
        kind, "default", "web", {"spec": {"replicas": 3}}, WriteOptions()
    )
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
    assert scale["status"]["selector"] == "app=web"


def test_builtin_validation_and_defaults(world: World) -> None:
    with pytest.raises(ApiError) as err:
        world.create("apps/deployments", _deploy(labels={"app": "other"}))
    assert err.value.code == 422
    job = {
        "metadata": {"name": "j"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }
    with pytest.raises(ApiError) as err:
        world.create("batch/jobs", job)
    assert err.value.code == 422 and "restartPolicy" in err.value.message
    job["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    created = world.create("batch/jobs", job)
    uid = created["metadata"]["uid"]
    assert created["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": uid}
    }
    labels = created["spec"]["template"]["metadata"]["labels"]
    assert labels["job-name"] == "j" and labels["controller-uid"] == uid
    assert (created["spec"]["completions"], created["spec"]["backoffLimit"]) == (1, 6)
    svc = world.create("/services", {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})
    assert (
        svc["spec"]["clusterIP"].startswith("127.96.")
        and svc["spec"]["ports"][0]["targetPort"] == 80
    )
    headless = world.create("/services", {"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}})
    assert headless["spec"]["clusterIPs"] == ["None"]
    secret = world.create("/secrets", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert secret["data"] == {"k": "dg=="} and "stringData" not in secret


def test_create_rules_namespace_generate_name_duplicates(world: World) -> None:
    with pytest.raises(ApiError) as err:
        world.create("/configmaps", {"metadata": {"name": "c"}}, ns="nope")
    assert err.value.code == 404 and err.value.message == 'namespaces "nope" not found'
    with pytest.raises(ApiError) as err:
        world.create("/configmaps", {"metadata": {"name": "c", "namespace": "other"}})
    assert err.value.code == 400
    made = world.create("/configmaps", {"metadata": {"generateName": "cm-"}})
    assert made["metadata"]["name"].startswith("cm-") and len(made["metadata"]["name"]) == 8
    with pytest.raises(ApiError) as err:
        world.create("/configmaps", {"metadata": {"name": made["metadata"]["name"]}})
    assert err.value.reason == "AlreadyExists"


def test_finalizers_hold_deletion_until_removed(world: World) -> None:
    kind = world.kind("/configmaps")
    world.create("/configmaps", {"metadata": {"name": "f", "finalizers": ["x/y"]}})
    deleting = world.delete("/configmaps", "f")
    assert deleting["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiError) as err:
        world.engine.patch(
            kind, "default", "f", "application/merge-patch+json",
            {"metadata": {"finalizers": ["x/y", "new"]}}, WriteOptions(),
        )  # fmt: skip
    assert err.value.code == 422
    final, _ = world.engine.patch(
        kind, "default", "f", "application/json-patch+json",
        [{"op": "remove", "path": "/metadata/finalizers"}], WriteOptions(),
    )  # fmt: skip
    assert world.get("/configmaps", "f") is None and final["metadata"]["name"] == "f"


def _owned(world: World, owner: dict[str, Any], name: str, block: bool = False) -> None:
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    }
    world.create("/configmaps", {"metadata": {"name": name, "ownerReferences": [ref]}})


def test_garbage_collection_background_orphan_foreground(world: World) -> None:
    owner = world.create("/configmaps", {"metadata": {"name": "owner"}})
    _owned(world, owner, "dep")
    world.delete("/configmaps", "owner")
    world.gc.collect()
    assert world.get("/configmaps", "dep") is None

    owner = world.create("/configmaps", {"metadata": {"name": "owner2"}})
    _owned(world, owner, "kept")
    world.delete("/configmaps", "owner2", propagationPolicy="Orphan")
    world.gc.collect()
    kept = world.get("/configmaps", "kept")
    assert world.get("/configmaps", "owner2") is None
    assert kept is not None and "ownerReferences" not in kept["metadata"]

    owner = world.create("/configmaps", {"metadata": {"name": "owner3"}})
    _owned(world, owner, "blocker", block=True)
    held = world.delete("/configmaps", "owner3", propagationPolicy="Foreground")
    assert held["metadata"]["finalizers"] == ["foregroundDeletion"]
    world.gc.collect()  # deletes the dependent
    assert world.get("/configmaps", "blocker") is None
    world.gc.collect()  # then the owner
    assert world.get("/configmaps", "owner3") is None


def test_pod_deletion_is_graceful_once_scheduled(world: World) -> None:
    spec = {"nodeName": "localkube-node", "containers": [{"name": "c", "image": "x"}]}
    world.create("/pods", {"metadata": {"name": "p"}, "spec": spec})
    out = world.delete("/pods", "p")
    assert out["metadata"]["deletionGracePeriodSeconds"] == 30 and world.get("/pods", "p")
    world.delete("/pods", "p", gracePeriodSeconds=0)
    assert world.get("/pods", "p") is None
    world.create("/pods", {"metadata": {"name": "q"}, "spec": {"containers": spec["containers"]}})
    world.delete("/pods", "q")
    assert world.get("/pods", "q") is None  # never scheduled: removed at once


def test_namespace_termination_deletes_contents_then_itself(world: World) -> None:
    world.create("/namespaces", {"metadata": {"name": "tmp"}}, ns=None)
    world.create("/configmaps", {"metadata": {"name": "c"}}, ns="tmp")
    ns = world.delete("/namespaces", "tmp", ns=None)
    assert ns["status"]["phase"] == "Terminating"
    with pytest.raises(ApiError) as err:
        world.create("/configmaps", {"metadata": {"name": "d"}}, ns="tmp")
    assert err.value.code == 403
    world.gc.collect()
    world.gc.collect()
    assert world.store.get("/namespaces", "", "tmp") is None
    assert world.get("/configmaps", "c", "tmp") is None


def test_state_file_keeps_objects_and_crds_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = World(state)
    crd = {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }
    first.create("apiextensions.k8s.io/customresourcedefinitions", crd, ns=None)
    first.create("/configmaps", {"metadata": {"name": "keep"}})
    first.store.save()
    second = World(state)
    assert second.get("/configmaps", "keep") is not None
    assert second.registry.lookup("example.com", "v1", "widgets") is not None
    assert second.store.rv == first.store.rv


def _two_version_crd(world: World) -> ResourceKind:
    crd = {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [
                {"name": "v1", "served": True, "storage": True},
                {"name": "v2", "served": True, "storage": False},
            ],
        },
    }
    created = world.create("apiextensions.k8s.io/customresourcedefinitions", crd, ns=None)
    world.registry.add(kind_from_crd(created))  # the server's CRD watch does this
    return world.kind("example.com/widgets")


def test_an_api_version_other_than_the_requests_is_refused(world: World) -> None:
    kind = world.kind("/configmaps")
    body = {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    with pytest.raises(ApiError) as err:
        world.engine.create(kind, "default", body, WriteOptions(version="v1"))
    assert err.value.code == 400
    assert err.value.message == (
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    )
    assert world.get("/configmaps", "c") is None
    cm = world.create("/configmaps", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    changed = {**cm, "apiVersion": "v2", "data": {"a": "2"}}
    with pytest.raises(ApiError) as err:
        world.engine.update(kind, "default", "c", changed, WriteOptions(version="v1"))
    assert err.value.code == 400 and "(v2) does not match" in err.value.message
    assert (world.get("/configmaps", "c") or {})["data"] == {"a": "1"}


def test_a_kind_other_than_the_requests_is_refused(world: World) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"}}
    with pytest.raises(ApiError) as err:
        world.engine.create(world.kind("/configmaps"), "default", body, WriteOptions())
    assert err.value.code == 400
    assert err.value.message == "kind Secret does not match the expected kind ConfigMap"


def test_any_served_version_is_written_through_its_own_url(world: World) -> None:
    kind = _two_version_crd(world)
    body = {"apiVersion": "example.com/v2", "kind": "Widget", "metadata": {"name": "w"}}
    created = world.engine.create(kind, "default", body, WriteOptions(version="v2"))
    assert created["apiVersion"] == "example.com/v1"  # stored at the storage version
    merge = "application/merge-patch+json"
    labels = {"metadata": {"labels": {"size": "2"}}}
    patched, _ = world.engine.patch(kind, "default", "w", merge, labels, WriteOptions(version="v2"))
    assert patched["metadata"]["labels"] == {"size": "2"}
    assert patched["apiVersion"] == "example.com/v1"
    with pytest.raises(ApiError) as err:
        world.engine.create(
            kind, "default", {**body, "metadata": {"name": "x"}}, WriteOptions(version="v1")
        )
    assert "(example.com/v2) does not match the expected API version (example.com/v1)" in (
        err.value.message
    )
