"""Patch semantics: RFC 7386 merge, RFC 6902 JSON patch (422 on failure), strategic merge."""

from __future__ import annotations

import pytest

from localkube.apiserver.errors import ApiError
from localkube.apiserver.patching import (
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)


def test_merge_patch_null_deletes_and_lists_are_replaced() -> None:
    doc = {"a": {"b": 1, "c": 2}, "l": [1, 2]}
    assert merge_patch(doc, {"a": {"b": None}, "l": [3]}) == {"a": {"c": 2}, "l": [3]}
    assert doc == {"a": {"b": 1, "c": 2}, "l": [1, 2]}  # input untouched


def test_merge_patch_with_list_body_is_400() -> None:
    with pytest.raises(ApiError) as err:
        apply_patch("application/merge-patch+json", {}, [1], builtin=False)
    assert err.value.code == 400


def test_json_patch_failed_test_is_422_and_bad_document_is_400() -> None:
    doc = {"metadata": {"resourceVersion": "5", "finalizers": ["x"]}}
    with pytest.raises(ApiError) as err:
        json_patch(doc, [{"op": "test", "path": "/metadata/resourceVersion", "value": "4"}])
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        json_patch(doc, [{"op": "remove", "path": "/metadata/finalizers/3"}])
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        json_patch(doc, {"op": "add"})
    assert err.value.code == 400
    ok = json_patch(doc, [{"op": "remove", "path": "/metadata/finalizers/0"}])
    assert ok["metadata"]["finalizers"] == []


def test_strategic_merge_merges_containers_by_name_and_ports_by_container_port() -> None:
    old = {
        "containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 80, "name": "http"}]},
            {"name": "b", "image": "y"},
        ]
    }
    patch = {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [{"name": "a", "image": "x2", "ports": [{"containerPort": 81}]}],
    }
    out = strategic_merge_patch(old, patch)
    assert out["containers"][0]["image"] == "x2"
    assert [p["containerPort"] for p in out["containers"][0]["ports"]] == [80, 81]
    assert out["containers"][1] == {"name": "b", "image": "y"}
    assert "$setElementOrder/containers" not in out


def test_strategic_merge_directives_delete_replace_and_primitive_lists() -> None:
    old = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "args": ["x"]}
    out = strategic_merge_patch(old, {"env": [{"name": "A", "$patch": "delete"}], "args": ["y"]})
    assert out == {"env": [{"name": "B", "value": "2"}], "args": ["y"]}
    out = strategic_merge_patch(old, {"env": [{"$patch": "replace"}, {"name": "C", "value": "3"}]})
    assert out["env"] == [{"name": "C", "value": "3"}]
    meta = {"finalizers": ["a", "b"]}
    assert strategic_merge_patch(meta, {"finalizers": ["c"]})["finalizers"] == ["a", "b", "c"]
    out = strategic_merge_patch(meta, {"$deleteFromPrimitiveList/finalizers": ["a"]})
    assert out["finalizers"] == ["b"]


def test_strategic_merge_on_custom_resources_is_415() -> None:
    with pytest.raises(ApiError) as err:
        apply_patch("application/strategic-merge-patch+json", {}, {}, builtin=False)
    assert err.value.code == 415
