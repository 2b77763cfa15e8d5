"""The API semantics of the checklist over raw HTTP: patch types, 409/422 and other Status
answers, the status subresource, finalizers, delete answers, watch and WatchList streams.

Every request is sent as the same bytes to both servers; what is compared is the code and
the normalised Status (`probing.status`), or the part of the object the rule is about.
"""

from __future__ import annotations

from typing import Any

from .conftest import Observation, Pair
from .manifests import deployment, widget
from .probing import APPLY, JSON_PATCH, MERGE, STRATEGIC, Side, rv, status

WIDGETS = "/apis/example.com/v1/namespaces/{ns}/widgets"
CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments"


def _paths(ns: str) -> tuple[str, str, str]:
    return WIDGETS.format(ns=ns), CONFIGMAPS.format(ns=ns), DEPLOYMENTS.format(ns=ns)


def test_patch_types(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        w, cm, dep = _paths(pair.ns)
        side.ok("POST", w, widget("a"))
        side.ok("POST", cm, {"metadata": {"name": "c"}, "data": {"a": "1"}})
        side.ok("POST", dep, deployment("web", replicas=0))
        obs: Observation = {}

        def patch(key: str, path: str, body: Any, ctype: str, part: str | None = None) -> None:
            reply = side.call("PATCH", path, body, content_type=ctype)
            obs[key] = status(reply)
            if part and reply.code == 200:
                obs[key + " result"] = reply.body.get(part)

        patch("cr merge", f"{w}/a", {"spec": {"size": 4}}, MERGE, "spec")
        patch("cr merge null deletes", f"{w}/a", {"spec": {"color": None}}, MERGE, "spec")
        patch("cr strategic", f"{w}/a", {"spec": {"size": 4}}, STRATEGIC)
        patch("cr strategic bad json", f"{w}/a", "{bad", STRATEGIC)
        patch(
            "cr json",
            f"{w}/a",
            [{"op": "replace", "path": "/spec/size", "value": 5}],
            JSON_PATCH,
            "spec",
        )
        patch(
            "cr json replace adds",
            f"{w}/a",
            [{"op": "replace", "path": "/spec/label", "value": "x"}],
            JSON_PATCH,
            "spec",
        )
        patch("cr text/plain", f"{w}/a", "{}", "text/plain")
        patch("cm strategic", f"{cm}/c", {"data": {"b": "2"}}, STRATEGIC, "data")
        patch("cm text/plain", f"{cm}/c", "{}", "text/plain")
        containers = [{"name": "side", "image": "busybox", "command": ["sleep", "1"]}]
        patch(
            "deployment strategic merges containers by name",
            f"{dep}/web",
            {"spec": {"template": {"spec": {"containers": containers}}}},
            STRATEGIC,
        )
        got = side.ok("GET", f"{dep}/web")["spec"]["template"]["spec"]["containers"]
        obs["deployment containers"] = sorted(c["name"] for c in got)
        patch(
            "deployment merge replaces containers",
            f"{dep}/web",
            {"spec": {"template": {"spec": {"containers": containers}}}},
            MERGE,
        )
        got = side.ok("GET", f"{dep}/web")["spec"]["template"]["spec"]["containers"]
        obs["deployment containers after merge"] = sorted(c["name"] for c in got)
        for name, body in {"array": "[1]", "string": '"x"', "number": "5", "null": "null"}.items():
            patch(f"cr merge {name}", f"{w}/a", body, MERGE)
            patch(f"cm strategic {name}", f"{cm}/c", body, STRATEGIC)
            patch(f"cr json {name}", f"{w}/a", body, JSON_PATCH)
        patch("cr json object", f"{w}/a", "{}", JSON_PATCH)
        for ctype in (MERGE, JSON_PATCH):
            patch(f"cr bad json {ctype}", f"{w}/a", "{bad", ctype)
        current = side.ok("GET", f"{w}/a")["metadata"]["resourceVersion"]
        stale = str(int(current) - 1)
        test_rv = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": stale},
            {"op": "replace", "path": "/spec/size", "value": 6},
        ]
        patch("json test op fails", f"{w}/a", test_rv, JSON_PATCH)
        patch("json remove missing", f"{w}/a", [{"op": "remove", "path": "/spec/zz"}], JSON_PATCH)
        patch("json unknown op", f"{w}/a", [{"op": "frob", "path": "/spec"}], JSON_PATCH)
        patch("json op without path", f"{w}/a", [{"op": "add", "value": 1}], JSON_PATCH)
        patch("json op not an object", f"{w}/a", "[1]", JSON_PATCH)
        patch(
            "json result invalid",
            f"{w}/a",
            [{"op": "replace", "path": "/spec/size", "value": 50}],
            JSON_PATCH,
        )
        patch("missing object", f"{w}/nope", {"spec": {}}, MERGE)
        obs["unchanged write keeps resourceVersion"] = (
            side.ok("PATCH", f"{w}/a", {"spec": {}}, content_type=MERGE)["metadata"][
                "resourceVersion"
            ]
            == side.ok("GET", f"{w}/a")["metadata"]["resourceVersion"]
        )
        return obs

    pair.check("patch-types", observe)


def test_server_side_apply_requests(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        w, cm, _ = _paths(pair.ns)
        obs: Observation = {}
        manager = {"fieldManager": "test"}

        def apply(key: str, path: str, text: str, query: dict[str, str] | None = None) -> None:
            reply = side.call("PATCH", path, text, content_type=APPLY, query=query)
            obs[key] = status(reply)
            if reply.code < 300:
                obs[key + " result"] = {
                    k: reply.body.get(k) for k in ("spec", "data") if k in reply.body
                }

        cr = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: s}\nspec: {size: 2}\n"
        apply("cr create", f"{w}/s", cr, manager)
        apply("cr update", f"{w}/s", cr.replace("size: 2", "size: 3"), manager)
        apply("cr without fieldManager", f"{w}/s", cr)
        apply(  # Go reads 0o7 as the integer 7 (PyYAML as a string)
            "cr go-typed octal",
            f"{w}/o",
            cr.replace("{size: 2}", "{size: 0o7}").replace("name: s", "name: o"),
            manager,
        )
        apply(
            "cr go-typed number",
            f"{w}/t",
            cr.replace("{size: 2}", "{size: 2, label: 5e-4}").replace("name: s", "name: t"),
            manager,
        )
        apply(
            "cr go-typed string",
            f"{w}/u",
            cr.replace("{size: 2}", '{size: 2, label: "5e-4"}').replace("name: s", "name: u"),
            manager,
        )
        text = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\ndata: {a: "1"}\n'
        apply("cm create", f"{cm}/m", text, manager)
        apply("cm update", f"{cm}/m", text.replace('"1"', '"2"'), manager)
        return obs

    pair.check("server-side-apply-api", observe)


def test_conflicts_and_validation(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        w, cm, dep = _paths(pair.ns)
        obs: Observation = {}
        obs["create"] = status(side.call("POST", w, widget("a")))
        obs["create again"] = status(side.call("POST", w, widget("a")))
        current = side.ok("GET", f"{w}/a")
        current["metadata"]["resourceVersion"] = str(rv(current) - 1)
        obs["stale update"] = status(side.call("PUT", f"{w}/a", current))
        renamed = {**current, "metadata": {**current["metadata"], "name": "b"}}
        obs["update renamed"] = status(side.call("PUT", f"{w}/a", renamed))
        obs["update missing"] = status(side.call("PUT", f"{w}/zz", widget("zz")))
        invalid = {
            "too big": widget("b", 11),
            "too big and rule": widget("b", 11, min=5, max=1),
            "rule": widget("b", 2, min=5, max=1),
            "enum and required": {**widget("b"), "spec": {"color": "green"}},
            "too long": widget("b", 2, label="much-too-long"),
            "wrong type": widget("b", 2, min="x"),
            "bad name": widget("B_x"),
        }
        for key, body in invalid.items():
            obs[f"invalid {key}"] = status(side.call("POST", w, body))
        strict = {"fieldValidation": "Strict"}
        obs["unknown field strict"] = status(
            side.call("POST", w, widget("c", 2, bogus=1), query=strict)
        )
        lax = side.call("POST", w, widget("d", 2, bogus=1))
        obs["unknown field pruned"] = (lax.code, lax.body.get("spec"))
        other_ns = {**widget("e"), "metadata": {"name": "e", "namespace": "elsewhere"}}
        obs["namespace mismatch"] = status(side.call("POST", w, other_ns))
        obs["namespace missing"] = status(
            side.call("POST", "/apis/example.com/v1/namespaces/no-such-ns/widgets", widget("f"))
        )
        dry = side.call("POST", w, widget("g"), query={"dryRun": "All"})
        obs["dry run"] = (
            dry.code,
            bool(dry.body["metadata"].get("uid")),
            side.call("GET", f"{w}/g").code,
        )
        obs["get missing"] = status(side.call("GET", f"{cm}/nope"))
        obs["post to a name"] = status(side.call("POST", f"{cm}/nope", {}))
        obs["status of a kind without it"] = status(
            side.call("PATCH", f"{cm}/nope/status", {}, content_type=MERGE)
        )
        bad_key = {"metadata": {"name": "k"}, "data": {"a b": "1"}}
        obs["configmap bad key"] = status(side.call("POST", cm, bad_key))
        secret = {"metadata": {"name": "k"}, "data": {"a b": "MQ=="}}
        obs["secret bad key"] = status(
            side.call("POST", f"/api/v1/namespaces/{pair.ns}/secrets", secret)
        )
        typed = {"metadata": {"name": "t"}, "data": {"a": 1}}
        obs["configmap wrong type"] = status(side.call("POST", cm, typed))
        unknown = {"metadata": {"name": "u"}, "bogus": 1}
        obs["configmap unknown field strict"] = status(side.call("POST", cm, unknown, query=strict))
        mismatch = deployment("sel")
        mismatch["spec"]["selector"] = {"matchLabels": {"app": "other"}}
        obs["deployment selector mismatch"] = status(
            side.call("POST", dep, mismatch), message=False
        )
        return obs

    pair.check("errors", observe)


def test_the_data_names_the_requests_api_version(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        w, cm, _ = _paths(pair.ns)
        other = "example.com/v2"
        obs: Observation = {}
        obs["cr create"] = status(side.call("POST", w, {**widget("a"), "apiVersion": other}))
        current = side.ok("POST", w, widget("b"))
        obs["cr update"] = status(side.call("PUT", f"{w}/b", {**current, "apiVersion": other}))
        obs["cr unchanged"] = side.ok("GET", f"{w}/b")["apiVersion"]
        wrong = {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
        obs["configmap create"] = status(side.call("POST", cm, wrong), message=False)
        unnamed = {"metadata": {"name": "d"}}
        obs["no apiVersion takes the request's"] = side.ok("POST", cm, unnamed)["apiVersion"]
        return obs

    pair.check("api-version-in-the-data", observe)


def test_status_subresource(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        w, _, _ = _paths(pair.ns)
        side.ok("POST", w, widget("s"))

        def seen(obj: dict[str, Any]) -> list[Any]:
            return [obj["metadata"]["generation"], obj["spec"]["size"], obj.get("status")]

        obs: Observation = {}
        obs["status patch"] = seen(
            side.ok("PATCH", f"{w}/s/status", {"status": {"phase": "Ready"}}, content_type=MERGE)
        )
        both = {"spec": {"size": 4}, "status": {"phase": "Ignored"}}
        obs["main patch ignores status"] = seen(
            side.ok("PATCH", f"{w}/s", both, content_type=MERGE)
        )
        current = side.ok("GET", f"{w}/s")
        put = {**current, "spec": {**current["spec"], "size": 9}, "status": {"phase": "Put"}}
        obs["status put ignores spec"] = seen(side.ok("PUT", f"{w}/s/status", put))
        labels = {"metadata": {"labels": {"z": "1"}}, "status": {"phase": "L"}}
        got = side.ok("PATCH", f"{w}/s/status", labels, content_type=MERGE)
        obs["status patch ignores labels"] = [got["metadata"].get("labels"), got["status"]]
        created = side.ok("POST", w, {**widget("t"), "status": {"phase": "Dropped"}})
        obs["create drops status"] = created.get("status")
        return obs

    pair.check("status-subresource", observe)


def test_finalizers_and_delete_answers(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        w, cm, _ = _paths(pair.ns)
        obs: Observation = {}
        held = widget("f", metadata={"finalizers": ["example.com/hold"]})
        side.ok("POST", w, held)
        reply = side.call("DELETE", f"{w}/f")
        meta = reply.body["metadata"]
        obs["delete held"] = [
            reply.code,
            reply.body["kind"],
            bool(meta.get("deletionTimestamp")),
            meta.get("deletionGracePeriodSeconds"),
            meta.get("generation"),
        ]
        more = {"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}}
        obs["add finalizer while deleting"] = status(
            side.call("PATCH", f"{w}/f", more, content_type=MERGE)
        )
        obs["still there"] = side.call("GET", f"{w}/f").code
        reply = side.call(
            "PATCH",
            f"{w}/f",
            [{"op": "remove", "path": "/metadata/finalizers"}],
            content_type=JSON_PATCH,
        )
        obs["last finalizer removed"] = [reply.code, reply.body["metadata"].get("finalizers")]
        obs["then gone"] = status(side.call("GET", f"{w}/f"))
        side.ok("POST", cm, {"metadata": {"name": "cf", "finalizers": ["example.com/hold"]}})
        side.call("DELETE", f"{cm}/cf")
        extra = {"metadata": {"finalizers": ["example.com/hold", "a/b", "c/d"]}}
        obs["configmap add finalizer while deleting"] = status(
            side.call("PATCH", f"{cm}/cf", extra, content_type=MERGE)
        )
        side.ok("PATCH", f"{cm}/cf", {"metadata": {"finalizers": None}}, content_type=MERGE)
        for kind, path, body in (
            ("widget", w, widget("d")),
            ("configmap", cm, {"metadata": {"name": "d"}}),
            (
                "service",
                f"/api/v1/namespaces/{pair.ns}/services",
                {"metadata": {"name": "d"}, "spec": {"ports": [{"port": 80}]}},
            ),
        ):
            side.ok("POST", path, body)
            reply = side.call("DELETE", f"{path}/d")
            details = {k: v for k, v in (reply.body.get("details") or {}).items() if k != "uid"}
            obs[f"delete {kind}"] = [
                reply.code,
                reply.body.get("kind"),
                reply.body.get("status"),
                details,
            ]
            obs[f"delete {kind} again"] = status(side.call("DELETE", f"{path}/d"))
        side.ok("POST", cm, {"metadata": {"name": "p"}})
        for key, pre in (
            ("uid", {"uid": "00000000-0000-0000-0000-000000000000"}),
            ("resourceVersion", {"resourceVersion": "1"}),
        ):
            obs[f"precondition {key}"] = status(
                side.call("DELETE", f"{cm}/p", {"preconditions": pre})
            )
        side.ok("POST", w, widget("p"))
        obs["widget precondition uid"] = status(
            side.call(
                "DELETE",
                f"{w}/p",
                {"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}},
            )
        )
        return obs

    pair.check("finalizers", observe)


def test_watch_from_list_resource_version(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        w, _, _ = _paths(pair.ns)
        start = side.ok("GET", w)["metadata"]["resourceVersion"]
        side.ok("POST", w, widget("a"))
        side.ok("PATCH", f"{w}/a", {"spec": {"size": 4}}, content_type=MERGE)
        side.ok("PATCH", f"{w}/a/status", {"status": {"phase": "P"}}, content_type=MERGE)
        side.ok("PATCH", f"{w}/a", {"metadata": {"labels": {"app": "other"}}}, content_type=MERGE)
        side.call("DELETE", f"{w}/a")
        obs: Observation = {}
        for key, query in {
            "all": {},
            "label selector": {"labelSelector": "app=demo"},
            "field selector": {"fieldSelector": "metadata.name=a"},
            "other name": {"fieldSelector": "metadata.name=b"},
        }.items():
            with side.watch(
                w, {"resourceVersion": start, "allowWatchBookmarks": "true", **query}
            ) as stream:
                events = stream.take(6, timeout=2)
            events = [e for e in events if e["type"] != "BOOKMARK"]
            obs[key] = [
                (
                    e["type"],
                    e["object"]["spec"]["size"],
                    (e["object"].get("status") or {}).get("phase"),
                )
                for e in events
            ]
            rvs = [rv(e["object"]) for e in events]
            obs[key + " rv order"] = rvs == sorted(set(rvs))
        reply = side.call("GET", w, query={"watch": "true", "resourceVersion": "x"})
        obs["malformed resourceVersion"] = status(reply)
        return obs

    pair.check("watch", observe)


def test_watch_from_compacted_resource_version_is_410(pair: Pair, crds: Any) -> None:
    """An RV older than what the server keeps: one ERROR event with a 410 Expired Status.

    kube-apiserver's watch cache starts when the resource is first served, so an RV from
    before (here "2") is out of its window; localkube keeps 10,000 events, so its window
    is closed with the `expire_watches` admin hook first (its compaction).
    """

    def observe(side: Side) -> Observation:
        w, _, _ = _paths(pair.ns)
        if side.name == "localkube":
            side.cluster.admin(
                "POST", "/_localkube/faults", {"action": "expire_watches", "resource": "widgets"}
            )
        with side.watch(w, {"resourceVersion": "2"}) as stream:
            code = stream.code
            events = stream.take(3, timeout=3)
        return {"code": code, "events": [(e["type"], status(e["object"])) for e in events]}

    pair.check("watch-expired", observe)


def test_watchlist_initial_events_then_bookmark(pair: Pair, crds: Any) -> None:
    def observe(side: Side) -> Observation:
        w, _, _ = _paths(pair.ns)
        side.ok("POST", w, widget("b"))
        side.ok("POST", w, widget("c"))
        query = {
            "sendInitialEvents": "true",
            "resourceVersionMatch": "NotOlderThan",
            "allowWatchBookmarks": "true",
        }
        obs: Observation = {}
        with side.watch(w, query) as stream:
            events = stream.take(3, timeout=5)
            side.ok("PATCH", f"{w}/b", {"spec": {"size": 5}}, content_type=MERGE)
            live = stream.next(5)
        obs["initial"] = [
            (
                e["type"],
                e["object"]["metadata"].get("name"),
                e["object"]["metadata"].get("annotations"),
            )
            for e in events
        ]
        bookmark = events[-1]["object"]
        obs["bookmark keys"] = [sorted(bookmark), sorted(bookmark["metadata"])]
        obs["live"] = live and (live["type"], live["object"]["metadata"]["name"])
        obs["invalid: sendInitialEvents without watch"] = status(
            side.call("GET", w, query={"sendInitialEvents": "true"})
        )
        obs["invalid: no resourceVersionMatch"] = status(
            side.call(
                "GET",
                w,
                query={"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true"},
            )
        )
        return obs

    pair.check("watchlist", observe)
