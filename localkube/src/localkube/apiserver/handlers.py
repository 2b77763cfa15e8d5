"""HTTP layer: one aiohttp handler that parses the URL, applies faults, and calls a verb.

Routes are thin: decode the body (JSON when no Content-Type, as the Python client sends
none), map method + URL to a Kubernetes verb, call the :class:`Engine`/:class:`Collector`,
and encode the answer (always `application/json`; a Table when `as=Table` is accepted).
Every failure becomes a Status body here and nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from . import discovery, openapi
from .collecting import Collector, DeleteOptions
from .defaults import invalid
from .engine import Engine, WriteOptions
from .errors import ApiError
from .faults import FaultInjector
from .kinds import ResourceKind
from .listoptions import ListOptions, parse_bool, parse_list_options
from .logs import serve_log
from .meta import clone
from .paging import paginate
from .patching import APPLY, apply_patch, check_patch_type, decode_patch
from .protobuf import decode_protobuf
from .routing import NOT_FOUND, Target, parse_path, resolve
from .selectors import FieldSelector, LabelSelector
from .tables import bookmark_table, build_table
from .watching import WatchRequest, stream_watch

__all__ = ["Handlers", "log_requests"]

log = logging.getLogger("localkube.apiserver")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(err: ApiError) -> web.Response:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after is not None else None
    return _json(err.body(), status=err.code, headers=headers)


@web.middleware
async def log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except ApiError as e:
        status = e.code
        return error_response(e)
    except web.HTTPException as e:
        status = e.status
        raise
    except Exception as e:
        log.exception("internal error on %s %s", request.method, request.path_qs)
        return error_response(ApiError(500, f"Internal error occurred: {e}"))
    finally:
        if log.isEnabledFor(logging.INFO):
            ms = (time.perf_counter() - start) * 1000
            log.info(
                "%s %s %d %.1fms ua=%s",
                request.method,
                request.path_qs,
                status,
                ms,
                request.headers.get("User-Agent", "-"),
            )


# kinds whose DELETE answers with the object even once it is gone (kube-apiserver's
# ReturnDeletedObject); for the others, an object deleted at once is a Status Success
_RETURNS_DELETED_OBJECT = {"/services"}


def deleted_status(kind: ResourceKind, obj: dict[str, Any]) -> dict[str, Any]:
    """The `Status{status: Success}` body kube-apiserver answers a completed delete with."""
    meta = obj["metadata"]
    details = {"name": meta["name"], "group": kind.group, "kind": kind.plural, "uid": meta["uid"]}
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {k: v for k, v in details.items() if v},
    }


def _no_route() -> web.Response:
    """kube-apiserver's answer for a path outside every API group: plain text, no Status."""
    return web.Response(status=404, text="404 page not found\n", content_type="text/plain")


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _content_type(request: web.Request) -> str:
    return request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


async def _read_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    ct = _content_type(request)
    if "protobuf" in ct:
        return decode_protobuf(raw)
    try:
        if "yaml" in ct:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as e:
        raise ApiError(400, f"the object provided is unrecognized or malformed: {e}") from e


def _verb(method: str, target: Target, query: Any) -> str:
    watching = target.legacy_watch or bool(parse_bool(query.get("watch")))
    if method == "GET":
        if watching:
            return "watch"
        return "list" if target.name is None else "get"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "deletecollection" if target.name is None else "delete"
    raise ApiError(405, "the server does not allow this method on the requested resource")


class Handlers:
    def __init__(
        self,
        engine: Engine,
        collector: Collector,
        faults: FaultInjector,
        log_dir: Path | None,
        address: Callable[[], str],
    ) -> None:
        self.engine = engine
        self.collector = collector
        self.faults = faults
        self.log_dir = log_dir
        self.address = address

    # -- presentation ----------------------------------------------------------------
    @staticmethod
    def present(kind: ResourceKind, version: str, obj: dict[str, Any]) -> dict[str, Any]:
        api_version = kind.api_version(version)
        if obj.get("apiVersion") == api_version:
            return obj
        return {**obj, "apiVersion": api_version}

    def _list_body(self, kind: ResourceKind, version: str, items: list[dict[str, Any]]) -> Any:
        return {
            "kind": kind.list_kind,
            "apiVersion": kind.api_version(version),
            "metadata": {"resourceVersion": str(self.engine.store.rv)},
            "items": [self.present(kind, version, o) for o in items],
        }

    def _one(
        self, request: web.Request, t: Target, obj: dict[str, Any], status: int = 200
    ) -> web.Response:
        if _wants_table(request) and request.method == "GET":
            table = build_table(
                t.kind,
                t.version,
                [obj],
                obj["metadata"].get("resourceVersion", ""),
                include_object=request.query.get("includeObject", "Metadata"),
            )
            return _json(table)
        return _json(self.present(t.kind, t.version, obj), status=status)

    # -- entry point -----------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path == "/_localkube/healthz":
            return web.Response(text="ok")
        if path == "/_localkube/faults":
            return await self._faults(request)
        await self.faults.wait_if_paused()
        if request.method == "GET":
            static = self._static(path)
            if static is not None:
                return static
        if not self._routed(path):
            return _no_route()
        group, version, rest = parse_path(self.engine.registry, path)
        if not rest:
            fault = self._take_fault(request, "get", None, None)
            if fault is not None:
                return await fault
            body = discovery.resource_list(self.engine.registry, group, version)
            if body is None or request.method != "GET":
                raise ApiError(404, NOT_FOUND)
            return _json(body)
        target = resolve(self.engine.registry, group, version, rest)
        verb = _verb(request.method, target, request.query)
        fault = self._take_fault(request, verb, target.kind.resource_name, target.subresource)
        if fault is not None:
            return await fault
        return await self._verb(request, target, verb)

    def _take_fault(
        self, request: web.Request, verb: str, resource: str | None, sub: str | None
    ) -> Awaitable[web.StreamResponse] | None:
        fault = self.faults.take(
            verb,
            resource,
            sub,
            request.headers.get("User-Agent", ""),
            request.headers.get("Content-Type", ""),
        )
        if fault is None:
            return None

        async def respond() -> web.StreamResponse:
            await request.read()
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if not fault.code:
                group, version, rest = parse_path(self.engine.registry, request.path)
                if not rest:
                    body = discovery.resource_list(self.engine.registry, group, version)
                    return _json(body) if body else error_response(ApiError(404, NOT_FOUND))
                target = resolve(self.engine.registry, group, version, rest)
                return await self._verb(request, target, verb)
            msg = f"localkube injected fault ({fault.code})"
            if fault.code == 429:
                msg = "Too many requests, please try again later."
            return error_response(ApiError(fault.code, msg, retry_after=fault.retry_after))

        return respond()

    def _routed(self, path: str) -> bool:
        """Whether kube-apiserver would route `path` to an API group (served or not)."""
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            return True
        return (
            parts[0] == "apis"
            and len(parts) > 1
            and parts[1] in self.engine.registry.group_versions()
        )

    def _static(self, path: str) -> web.Response | None:
        reg = self.engine.registry
        if path == "/version":
            return _json(discovery.version_info())
        if path == "/api":
            return _json(discovery.api_versions(self.address()))
        if path == "/apis":
            return _json(discovery.api_groups(reg))
        if path == "/openapi/v3":
            return _json(openapi.openapi_index(reg))
        if path.startswith("/openapi/v3/"):
            tail = path[len("/openapi/v3/") :].split("/")
            if tail[:1] == ["api"] and len(tail) == 2:
                doc = openapi.group_version_document(reg, "", tail[1])
            elif tail[:1] == ["apis"] and len(tail) == 3:
                doc = openapi.group_version_document(reg, tail[1], tail[2])
            else:
                doc = None
            if doc is None:
                raise ApiError(404, NOT_FOUND)
            return _json(doc)
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "apis":
            versions = reg.group_versions().get(parts[1])
            if not versions:
                return _no_route()
            return _json(discovery.api_group(parts[1], versions))
        if path.startswith("/openapi/") or path in ("/healthz", "/readyz", "/livez"):
            if path.startswith("/openapi/"):
                raise ApiError(404, NOT_FOUND)
            return web.Response(text="ok")
        return None

    async def _faults(self, request: web.Request) -> web.Response:
        if request.method == "GET":
            return _json(self.faults.describe())
        body = await _read_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "fault body must be a JSON object")
        try:
            return _json(self.faults.apply_json(body))
        except (TypeError, ValueError) as e:
            raise ApiError(400, str(e)) from e

    # -- verbs -----------------------------------------------------------------------
    def _write_options(self, request: web.Request, version: str) -> WriteOptions:
        q = request.query
        return WriteOptions(
            dry_run=bool(q.get("dryRun")),
            field_validation=q.get("fieldValidation", ""),
            version=version,
        )

    def _written(
        self, request: web.Request, t: Target, obj: dict[str, Any], opts: WriteOptions, status: int
    ) -> web.Response:
        resp = _json(self.present(t.kind, t.version, obj), status=status)
        for w in opts.warnings:
            resp.headers.add("Warning", '299 - "' + w.replace('"', '\\"') + '"')
        return resp

    async def _verb(self, request: web.Request, t: Target, verb: str) -> web.StreamResponse:
        engine, q = self.engine, request.query
        kind = t.kind
        if verb in ("list", "watch", "deletecollection"):
            list_opts = parse_list_options(q, watch=verb == "watch")
            labels = LabelSelector(q.get("labelSelector"))
            field_text = q.get("fieldSelector")
            if verb == "watch" and t.name is not None:
                field_text = ",".join(filter(None, [field_text, f"metadata.name={t.name}"]))
            fields = FieldSelector(field_text, kind.key, kind.kind, builtin=kind.builtin)
            if verb == "watch":
                return await self._watch(request, t, labels, fields, list_opts)
            items = engine.list(kind, t.namespace, labels, fields)
            if verb == "deletecollection":
                if kind.key == "/namespaces":  # upstream serves no deletecollection here
                    raise ApiError(
                        405, "the server does not allow this method on the requested resource"
                    )
                del_opts = DeleteOptions(await _read_body(request), dict(q))
                deleted = self.collector.delete_collection(kind, items, del_opts)
                return _json(self._list_body(kind, t.version, deleted))
            page = paginate(
                items,
                limit=q.get("limit"),
                token=list_opts.continue_token,
                current_rv=engine.store.rv,
                too_old=lambda rv: engine.store.too_old(kind.key, rv),
                selected=bool(labels or fields),
            )
            if _wants_table(request):
                table = build_table(
                    kind,
                    t.version,
                    page.items,
                    str(page.resource_version),
                    include_object=q.get("includeObject", "Metadata"),
                )
                return _json({**table, "metadata": page.metadata()})
            body = self._list_body(kind, t.version, page.items)
            return _json({**body, "metadata": page.metadata()})
        assert t.name is not None or verb == "create"
        if verb == "create":
            if t.name is not None:
                raise ApiError(
                    405, "the server does not allow this method on the requested resource"
                )
            opts = self._write_options(request, t.version)
            obj = engine.create(kind, t.namespace, await _read_body(request), opts)
            return self._written(request, t, obj, opts, 201)
        name = t.name
        assert name is not None
        if verb == "get":
            obj = engine.get(kind, t.namespace, name)
            if t.subresource == "scale":
                return _json(engine.scale_of(kind, obj))
            if t.subresource == "log":
                return await serve_log(request, engine.store, self.log_dir, obj)
            return self._one(request, t, obj)
        if verb == "delete":
            del_opts = DeleteOptions(await _read_body(request), dict(q))
            obj = self.collector.delete(kind, t.namespace, name, del_opts)
            gone = engine.store.get(kind.key, t.namespace or "", name) is None
            if gone and kind.key not in _RETURNS_DELETED_OBJECT:
                return _json(deleted_status(kind, obj))
            return _json(self.present(kind, t.version, obj))
        opts = self._write_options(request, t.version)
        ctype = _content_type(request)
        if verb == "patch":
            check_patch_type(ctype, builtin=kind.builtin or t.subresource == "scale")
            body = decode_patch(ctype, await request.read())
            if ctype == APPLY and not q.get("fieldManager"):
                raise invalid(
                    "PatchOptions",
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: is required for apply patch",
                            "field": "fieldManager",
                        }
                    ],
                    group="meta.k8s.io",
                )
        else:
            body = await _read_body(request)
        if t.subresource == "scale":
            if verb == "patch":
                scale = engine.scale_of(kind, engine.get(kind, t.namespace, name))
                body = apply_patch(_content_type(request), scale, body, builtin=True)
            if not isinstance(body, dict):
                raise ApiError(400, "the body of the request must be an object")
            return _json(engine.write_scale(kind, t.namespace, name, body, opts))
        if t.subresource == "finalize":
            return _json(self._finalize(kind, name, body))
        sub = t.subresource
        if verb == "update":
            obj = engine.update(kind, t.namespace, name, body, opts, sub)
            return self._written(request, t, obj, opts, 200)
        obj, created = engine.patch(kind, t.namespace, name, ctype, body, opts, sub)
        return self._written(request, t, obj, opts, 201 if created else 200)

    def _finalize(self, kind: ResourceKind, name: str, body: Any) -> dict[str, Any]:
        ns = self.engine.get(kind, None, name)
        new = clone(ns)
        new.setdefault("spec", {})["finalizers"] = list(
            ((body or {}).get("spec") or {}).get("finalizers") or []
        )
        if new == ns:
            return ns
        obj = self.engine.store.commit(kind.key, new, "MODIFIED")
        self.collector.schedule()
        return obj

    async def _watch(
        self,
        request: web.Request,
        t: Target,
        labels: LabelSelector,
        fields: FieldSelector,
        opts: ListOptions,
    ) -> web.StreamResponse:
        q = request.query
        table = _wants_table(request)

        def render(obj: dict[str, Any]) -> dict[str, Any]:
            if table:
                return build_table(t.kind, t.version, [obj], obj["metadata"]["resourceVersion"])
            return self.present(t.kind, t.version, obj)

        def render_bookmark(obj: dict[str, Any]) -> dict[str, Any]:
            if table:  # upstream: one row, its object the bookmark's PartialObjectMetadata
                return bookmark_table(obj)
            return self.present(t.kind, t.version, obj)

        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        wr = WatchRequest(
            t.kind, t.namespace, labels, fields, opts, timeout, render, render_bookmark
        )
        return await stream_watch(request, self.engine.store, wr)
