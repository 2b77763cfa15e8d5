"""WatchList over raw HTTP: the stream's shape and the invalid option combinations.

A WatchList (`watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan`, what
kubectl 1.35 sends) streams the current objects as ADDED, then one BOOKMARK annotated
`k8s.io/initial-events-end: "true"` at the snapshot's resourceVersion, then live events.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import pytest

from .apiserver_fixtures import Kube, kube

__all__ = ["kube"]

WATCHLIST = {
    "watch": "true",
    "sendInitialEvents": "true",
    "resourceVersionMatch": "NotOlderThan",
    "allowWatchBookmarks": "true",
}
END = "k8s.io/initial-events-end"


def call(kube: Kube, method: str, path: str, body: Any = None, ctype: str = "") -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(kube.server.url + path, data=data, method=method)
    req.add_header("Content-Type", ctype or "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def http_error(kube: Kube, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
    url = f"{kube.server.url}{path}?{urllib.parse.urlencode(params)}"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, timeout=10).close()
    return info.value.code, json.loads(info.value.read())


class Stream:
    """One open watch; `next()` returns the next event or fails after `timeout`."""

    def __init__(self, kube: Kube, path: str, params: dict[str, str], accept: str = "") -> None:
        url = f"{kube.server.url}{path}?{urllib.parse.urlencode(params)}"
        req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
        self.resp = urllib.request.urlopen(req, timeout=5)

    def next(self) -> dict[str, Any]:
        line = self.resp.readline()
        assert line, "the stream ended"
        event: dict[str, Any] = json.loads(line)
        return event

    def silent(self, seconds: float) -> bool:
        """True when no event arrives within `seconds`."""
        self.resp.fp.raw._sock.settimeout(seconds)  # type: ignore[union-attr]
        try:
            self.resp.readline()
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.resp.close()


@pytest.fixture
def ns(kube: Kube) -> str:
    """A fresh namespace, left in place: deleting it would write while later tests watch."""
    name = f"wl-{uuid.uuid4().hex[:8]}"
    call(kube, "POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    return name


def configmap(kube: Kube, ns: str, name: str, app: str = "x", **data: str) -> dict[str, Any]:
    body = {"metadata": {"name": name, "labels": {"app": app}}, "data": data}
    obj: dict[str, Any] = call(kube, "POST", f"/api/v1/namespaces/{ns}/configmaps", body)
    return obj


def patch_data(kube: Kube, ns: str, name: str, **data: str) -> dict[str, Any]:
    path = f"/api/v1/namespaces/{ns}/configmaps/{name}"
    obj: dict[str, Any] = call(
        kube, "PATCH", path, {"data": data}, ctype="application/merge-patch+json"
    )
    return obj


def current_rv(kube: Kube) -> int:
    return int(call(kube, "GET", "/api/v1/configmaps")["metadata"]["resourceVersion"])


def test_watchlist_streams_selected_objects_then_end_bookmark_then_live_events(
    kube: Kube, ns: str
) -> None:
    a = configmap(kube, ns, "a")
    b = configmap(kube, ns, "b")
    configmap(kube, ns, "other", app="y")
    elsewhere = f"{ns}-2"
    call(kube, "POST", "/api/v1/namespaces", {"metadata": {"name": elsewhere}})
    configmap(kube, elsewhere, "a")
    rv_before_watch = current_rv(kube)

    stream = Stream(
        kube, f"/api/v1/namespaces/{ns}/configmaps", {**WATCHLIST, "labelSelector": "app=x"}
    )
    try:
        first, second = stream.next(), stream.next()
        assert [first["type"], second["type"]] == ["ADDED", "ADDED"]
        assert {first["object"]["metadata"]["name"], second["object"]["metadata"]["name"]} == {
            "a",
            "b",
        }
        assert first["object"]["kind"] == "ConfigMap" and first["object"]["apiVersion"] == "v1"
        bookmark = stream.next()
        bookmark_rv = bookmark["object"]["metadata"]["resourceVersion"]
        assert bookmark == {
            "type": "BOOKMARK",
            "object": {
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": bookmark_rv, "annotations": {END: "true"}},
            },
        }
        assert int(bookmark_rv) == rv_before_watch  # nothing else writes to this server
        assert int(a["metadata"]["resourceVersion"]) < int(b["metadata"]["resourceVersion"])
        assert int(b["metadata"]["resourceVersion"]) < int(bookmark_rv)

        configmap(kube, ns, "skipped", app="y")  # not selected: never sent
        c = configmap(kube, ns, "c")
        live = stream.next()
        assert live["type"] == "ADDED" and live["object"]["metadata"]["name"] == "c"
        assert live["object"]["metadata"]["resourceVersion"] == c["metadata"]["resourceVersion"]
        assert int(c["metadata"]["resourceVersion"]) > int(bookmark_rv)
        patch_data(kube, ns, "a", k="v")
        modified = stream.next()
        assert modified["type"] == "MODIFIED" and modified["object"]["data"] == {"k": "v"}
    finally:
        stream.close()


@pytest.mark.parametrize("rv", ["", "0", "1"])
def test_watchlist_initial_state_is_the_current_one(kube: Kube, ns: str, rv: str) -> None:
    configmap(kube, ns, "a", k="1")
    patch_data(kube, ns, "a", k="2")
    params = {**WATCHLIST, "resourceVersion": rv} if rv else WATCHLIST
    stream = Stream(kube, f"/api/v1/namespaces/{ns}/configmaps", params)
    try:
        added = stream.next()
        assert added["type"] == "ADDED" and added["object"]["data"] == {"k": "2"}
        end = stream.next()
        assert end["type"] == "BOOKMARK" and end["object"]["metadata"]["annotations"] == {
            END: "true"
        }
        assert int(end["object"]["metadata"]["resourceVersion"]) >= int(
            added["object"]["metadata"]["resourceVersion"]
        )
    finally:
        stream.close()


def test_watchlist_of_one_object_by_field_selector_and_empty_namespace(kube: Kube, ns: str) -> None:
    configmap(kube, ns, "a")
    configmap(kube, ns, "b")
    stream = Stream(
        kube,
        f"/api/v1/namespaces/{ns}/configmaps",
        {**WATCHLIST, "fieldSelector": "metadata.name=b"},
    )
    try:
        assert stream.next()["object"]["metadata"]["name"] == "b"
        assert stream.next()["type"] == "BOOKMARK"
    finally:
        stream.close()
    empty = f"{ns}-empty"
    call(kube, "POST", "/api/v1/namespaces", {"metadata": {"name": empty}})
    stream = Stream(kube, f"/api/v1/namespaces/{empty}/configmaps", WATCHLIST)
    try:
        end = stream.next()  # nothing to list: the bookmark comes first
        assert end["type"] == "BOOKMARK" and END in end["object"]["metadata"]["annotations"]
    finally:
        stream.close()


def test_watchlist_without_bookmarks_sends_initial_events_but_no_end_marker(
    kube: Kube, ns: str
) -> None:
    configmap(kube, ns, "a")
    params = {k: v for k, v in WATCHLIST.items() if k != "allowWatchBookmarks"}
    stream = Stream(kube, f"/api/v1/namespaces/{ns}/configmaps", params)
    try:
        assert stream.next()["type"] == "ADDED"
        configmap(kube, ns, "b")
        live = stream.next()
        assert live["type"] == "ADDED" and live["object"]["metadata"]["name"] == "b"
    finally:
        stream.close()


def test_send_initial_events_false_streams_only_changes(kube: Kube, ns: str) -> None:
    configmap(kube, ns, "a")
    params = {**WATCHLIST, "sendInitialEvents": "false"}
    stream = Stream(kube, f"/api/v1/namespaces/{ns}/configmaps", params)
    try:
        configmap(kube, ns, "b")
        live = stream.next()
        assert live["type"] == "ADDED" and live["object"]["metadata"]["name"] == "b"
    finally:
        stream.close()


def test_plain_watch_from_list_rv_with_bookmarks_replays_without_initial_events(
    kube: Kube, ns: str
) -> None:
    configmap(kube, ns, "a")
    rv = call(kube, "GET", f"/api/v1/namespaces/{ns}/configmaps")["metadata"]["resourceVersion"]
    patch_data(kube, ns, "a", k="1")  # after the list: replayed
    params = {"watch": "true", "allowWatchBookmarks": "true", "resourceVersion": rv}
    stream = Stream(kube, f"/api/v1/namespaces/{ns}/configmaps", params)
    try:
        replayed = stream.next()
        assert replayed["type"] == "MODIFIED" and replayed["object"]["data"] == {"k": "1"}
        configmap(kube, ns, "b")
        live = stream.next()
        assert live["type"] == "ADDED" and live["object"]["metadata"]["name"] == "b"
        assert stream.silent(0.5)  # no end-of-initial-events bookmark on a resumed watch
    finally:
        stream.close()


def test_legacy_watch_from_now_defaults_to_watchlist_like_upstream(kube: Kube, ns: str) -> None:
    configmap(kube, ns, "a")
    params = {"watch": "true", "allowWatchBookmarks": "true"}
    stream = Stream(kube, f"/api/v1/namespaces/{ns}/configmaps", params)
    try:
        assert stream.next()["type"] == "ADDED"
        end = stream.next()
        assert end["type"] == "BOOKMARK" and END in end["object"]["metadata"]["annotations"]
    finally:
        stream.close()


def test_table_watchlist_bookmark_is_a_table_row_of_metadata(kube: Kube, ns: str) -> None:
    configmap(kube, ns, "a")
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
    stream = Stream(kube, f"/api/v1/namespaces/{ns}/configmaps", WATCHLIST, accept=accept)
    try:
        added = stream.next()
        assert added["type"] == "ADDED" and added["object"]["kind"] == "Table"
        end = stream.next()["object"]
        assert end["kind"] == "Table"
        (row,) = end["rows"]
        assert row["object"]["kind"] == "PartialObjectMetadata"
        assert row["object"]["metadata"]["annotations"] == {END: "true"}
    finally:
        stream.close()


INVALID = [
    pytest.param(
        {"watch": "true", "sendInitialEvents": "true"},
        "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
        "resourceVersionMatch to NotOlderThan",
        id="sendInitialEvents-without-NotOlderThan",
    ),
    pytest.param(
        {"watch": "true", "resourceVersionMatch": "NotOlderThan", "resourceVersion": "1"},
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless "
        "sendInitialEvents is provided",
        id="match-on-plain-watch",
    ),
    pytest.param(
        {"watch": "true", "sendInitialEvents": "true", "resourceVersionMatch": "Exact"},
        'resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"',
        id="Exact-on-watchlist",
    ),
    pytest.param(
        {"sendInitialEvents": "true"},
        "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        id="sendInitialEvents-on-list",
    ),
    pytest.param(
        {"resourceVersionMatch": "NotOlderThan"},
        "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
        "resourceVersion is provided",
        id="list-match-without-rv",
    ),
]


@pytest.mark.parametrize(("params", "detail"), INVALID)
def test_invalid_combinations_are_422_invalid_list_options(
    kube: Kube, params: dict[str, str], detail: str
) -> None:
    code, status = http_error(kube, "/api/v1/namespaces/default/configmaps", params)
    assert code == 422
    assert status["kind"] == "Status" and status["reason"] == "Invalid"
    assert status["details"]["kind"] == "ListOptions"
    assert status["details"]["group"] == "meta.k8s.io"
    assert detail in status["message"]
    assert status["message"].startswith('ListOptions.meta.k8s.io "" is invalid: ')


@pytest.mark.parametrize("watchlist", [True, False], ids=["watchlist", "plain-watch"])
def test_watch_from_a_malformed_resource_version_is_500_as_upstream(
    kube: Kube, watchlist: bool
) -> None:
    params = {**WATCHLIST} if watchlist else {"watch": "true"}
    code, status = http_error(
        kube, "/api/v1/namespaces/default/configmaps", {**params, "resourceVersion": "abc"}
    )
    assert code == 500
    assert status["message"] == (
        'resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid syntax'
    )


@pytest.mark.parametrize("value", ["maybe", ""])
def test_any_boolean_but_false_or_0_is_true_as_upstream_decodes_it(
    kube: Kube, ns: str, value: str
) -> None:
    configmap(kube, ns, "a")
    params = {**WATCHLIST, "sendInitialEvents": value, "watch": value}
    stream = Stream(kube, f"/api/v1/namespaces/{ns}/configmaps", params)
    try:
        assert stream.next()["type"] == "ADDED"
        assert stream.next()["type"] == "BOOKMARK"
    finally:
        stream.close()


def test_watchlist_waits_for_a_future_rv_then_times_out_with_504(kube: Kube, ns: str) -> None:
    future = current_rv(kube) + 1
    created: list[dict[str, Any]] = []
    timer = threading.Timer(0.5, lambda: created.append(configmap(kube, ns, "late")))
    timer.start()
    stream = Stream(
        kube, f"/api/v1/namespaces/{ns}/configmaps", {**WATCHLIST, "resourceVersion": str(future)}
    )
    try:
        added = stream.next()  # the store reached the floor within the wait
        assert added["object"]["metadata"]["name"] == "late"
        assert stream.next()["type"] == "BOOKMARK"
    finally:
        stream.close()
        timer.join()
    far = current_rv(kube) + 1000
    start = time.monotonic()
    stream = Stream(
        kube, f"/api/v1/namespaces/{ns}/configmaps", {**WATCHLIST, "resourceVersion": str(far)}
    )
    try:
        error = stream.next()  # a 200 stream whose one event is upstream's 504 Status
        assert 2.5 < time.monotonic() - start < 6
        status = error["object"]
        assert error["type"] == "ERROR" and status["code"] == 504
        assert status["reason"] == "Timeout"
        assert status["message"].startswith(
            f"Timeout: Too large resource version: {far}, current: "
        )
        assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
        assert stream.resp.readline() == b""  # and the stream ends
    finally:
        stream.close()
