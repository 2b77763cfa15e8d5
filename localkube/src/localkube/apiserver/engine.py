"""The verbs, independent of HTTP: create, get, list, update, patch, scale, delete.

Every write goes through :meth:`Engine._commit_write`, which applies the object rules of
spec §4 in one place: immutable metadata, status-subresource separation, defaults and
validation (built-in or CRD schema), generation, no-op detection (same RV, no event),
finalizer rules, and the final delete when the last finalizer of a deleting object goes.
Deletion policies and garbage collection live in :mod:`.collecting`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from kubellm.api.timestamps import now_rfc3339

from . import crds
from .defaults import ClusterIPAllocator, default_and_validate, invalid
from .errors import ApiError
from .kinds import Registry, ResourceKind
from .meta import clone, go_strings, random_suffix, validate_name
from .paging import storage_key
from .patching import apply_patch
from .schema import process
from .selectors import FieldSelector, LabelSelector
from .storage import Store

__all__ = ["Engine", "WriteOptions"]

SEED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")


@dataclass
class WriteOptions:
    dry_run: bool = False
    field_validation: str = ""  # Strict, Warn, Ignore ("" = Warn)
    warnings: list[str] = field(default_factory=list)
    #: the version in the request's URL, which the body's apiVersion must name (None: the
    #: storage version, for the server's own writes)
    version: str | None = None


def not_found(kind: ResourceKind, name: str) -> ApiError:
    return ApiError(
        404,
        f'{kind.resource_name} "{name}" not found',
        name=name,
        group=kind.group,
        kind=kind.plural,
    )


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


class Engine:
    """The API's object semantics over a :class:`Store` and a :class:`Registry`."""

    def __init__(self, store: Store, registry: Registry, service_cidr: str) -> None:
        self.store = store
        self.registry = registry
        self.ips = ClusterIPAllocator(service_cidr, self._service_ips)
        self.collector: Any = None  # set by collecting.Collector

    def _service_ips(self) -> set[str]:
        return {
            o["spec"].get("clusterIP", "")
            for o in self.store.list("/services")
            if isinstance(o.get("spec"), dict)
        }

    def seed(self) -> None:
        """Default namespaces, and resources of stored CRDs after a reload."""
        for crd in self.store.list("apiextensions.k8s.io/customresourcedefinitions"):
            self.registry.add(crds.kind_from_crd(crd))
        ns_kind = self.registry.get("/namespaces")
        assert ns_kind is not None
        for name in SEED_NAMESPACES:
            if self.store.get("/namespaces", "", name) is None:
                self.create(ns_kind, None, {"metadata": {"name": name}}, WriteOptions())

    # -- reads -------------------------------------------------------------------------
    def get(self, kind: ResourceKind, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(kind.key, namespace or "", name)
        if obj is None:
            raise not_found(kind, name)
        return obj

    def list(
        self,
        kind: ResourceKind,
        namespace: str | None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
    ) -> list[dict[str, Any]]:
        items = self.store.list(kind.key, namespace)
        if labels:
            items = [o for o in items if labels.matches(o)]
        if fields:
            items = [o for o in items if fields.matches(o)]
        items.sort(key=storage_key)  # etcd's key order, as kube-apiserver lists
        return items

    # -- create ------------------------------------------------------------------------
    def _check_namespace(self, kind: ResourceKind, namespace: str | None, name: str) -> None:
        if not kind.namespaced:
            return
        if not namespace:
            raise ApiError(404, "the server could not find the requested resource")
        ns = self.store.get("/namespaces", "", namespace)
        if ns is None:
            raise ApiError(
                404, f'namespaces "{namespace}" not found', name=namespace, kind="namespaces"
            )
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f'{kind.resource_name} "{name}" is forbidden: unable to create new content in '
                f"namespace {namespace} because it is being terminated",
                name=name,
                group=kind.group,
                kind=kind.plural,
                causes=[
                    {
                        "reason": "NamespaceTerminating",
                        "message": f"namespace {namespace} is being terminated",
                        "field": "metadata.namespace",
                    }
                ],
            )

    def create(
        self,
        kind: ResourceKind,
        namespace: str | None,
        body: Any,
        opts: WriteOptions,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be an object")
        obj = clone(body)
        self._check_kind(kind, obj, opts.version)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if kind.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request",
                )
            meta["namespace"] = namespace or body_ns
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise invalid(
                    kind.kind,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: name or generateName is required",
                            "field": "metadata.name",
                        }
                    ],
                    group=kind.group,
                )
            meta["name"] = prefix + random_suffix()
        problem = validate_name(meta["name"])
        if problem:
            raise invalid(
                kind.kind,
                meta["name"],
                [
                    {
                        "reason": "FieldValueInvalid",
                        "message": f'Invalid value: "{meta["name"]}": {problem}',
                        "field": "metadata.name",
                    }
                ],
                group=kind.group,
            )
        self._check_namespace(kind, meta.get("namespace"), meta["name"])
        if kind.key.endswith("/customresourcedefinitions") is False and not kind.builtin:
            crd = self.store.get(
                "apiextensions.k8s.io/customresourcedefinitions", "", kind.resource_name
            )
            if crd and crd["metadata"].get("deletionTimestamp"):
                raise ApiError(
                    405, "create not allowed while custom resource definition is terminating"
                )
        if self.store.get(kind.key, meta.get("namespace") or "", meta["name"]) is not None:
            raise ApiError(
                409,
                f'{kind.resource_name} "{meta["name"]}" already exists',
                reason="AlreadyExists",
                name=meta["name"],
                group=kind.group,
                kind=kind.plural,
            )
        for key in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(key, None)
        meta.pop("managedFields", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if kind.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if kind.status:
            obj.pop("status", None)
        obj = self._admit(kind, obj, None, opts)
        if opts.dry_run:
            return obj
        return self.store.commit(kind.key, obj, "ADDED")

    def _check_kind(self, kind: ResourceKind, obj: dict[str, Any], version: str | None) -> None:
        """A body names the request's kind and version, or none (then it takes them);
        kube-apiserver answers 400 to any other, and so does this. Stored at the storage
        version: CRD versions share storage (no conversion)."""
        body_kind = obj.get("kind")
        if body_kind and body_kind != kind.kind:
            raise ApiError(400, f"kind {body_kind} does not match the expected kind {kind.kind}")
        expected = kind.api_version(version)
        body_version = obj.get("apiVersion")
        if body_version and body_version != expected:
            raise ApiError(
                400,
                f"the API version in the data ({body_version}) does not match the expected "
                f"API version ({expected})",
            )
        obj["kind"] = kind.kind
        obj["apiVersion"] = kind.api_version()

    def _admit(
        self,
        kind: ResourceKind,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        opts: WriteOptions,
    ) -> dict[str, Any]:
        """Defaults and validation of the kind (built-in rules, CRD rules, CR schema)."""
        if kind.key == "apiextensions.k8s.io/customresourcedefinitions":
            crds.validate_crd(obj)
            if old is None:
                fins = obj["metadata"].setdefault("finalizers", [])
                if crds.CLEANUP_FINALIZER not in fins:
                    fins.append(crds.CLEANUP_FINALIZER)
            crds.accept_crd(obj, old)
        elif kind.builtin:
            default_and_validate(kind.key, obj, old, alloc=None if opts.dry_run else self.ips)
        else:
            schema = kind.schemas.get(kind.storage_version)
            if schema:
                result = process(obj, schema, old)
                if result.unknown:
                    fields = ", ".join(f'unknown field "{u}"' for u in result.unknown)
                    if opts.field_validation == "Strict":
                        version = kind.api_version().rpartition("/")[2]
                        raise ApiError(
                            400,
                            f'{kind.kind} in version "{version}" cannot be handled as a '
                            f"{kind.kind}: strict decoding error: {fields}",
                        )
                    if opts.field_validation != "Ignore":
                        opts.warnings.extend(f'unknown field "{u}"' for u in result.unknown)
                if result.causes:
                    raise invalid(
                        kind.kind, obj["metadata"]["name"], result.causes, group=kind.group
                    )
                obj = result.value
        return obj

    # -- update ------------------------------------------------------------------------
    def update(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        body: Any,
        opts: WriteOptions,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be an object")
        old = self.get(kind, namespace, name)
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise ApiError(
                400,
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})",
            )
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise self.conflict(kind, name)
        return self._commit_write(kind, old, clone(body), opts, subresource)

    def conflict(self, kind: ResourceKind, name: str) -> ApiError:
        return ApiError(
            409,
            f'Operation cannot be fulfilled on {kind.resource_name} "{name}": the object has '
            "been modified; please apply your changes to the latest version and try again",
            reason="Conflict",
            name=name,
            group=kind.group,
            kind=kind.plural,
        )

    def patch(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        opts: WriteOptions,
        subresource: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Apply a patch; returns (object, created) — created only for server-side apply."""
        old = self.store.get(kind.key, namespace or "", name)
        if old is None:
            if content_type == "application/apply-patch+yaml" and subresource is None:
                body = clone(patch) if isinstance(patch, dict) else {}
                body.setdefault("metadata", {})["name"] = name
                return self.create(kind, namespace, body, opts), True
            raise not_found(kind, name)
        # the patch applies to the object as the request's version presents it
        seen = {**old, "apiVersion": kind.api_version(opts.version)}
        new = apply_patch(content_type, seen, patch, builtin=kind.builtin)
        new_meta = new.get("metadata") or {}
        rv = new_meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise self.conflict(kind, name)
        if new_meta.get("name", name) != name:
            raise ApiError(400, "the name of the object does not match the name on the URL")
        return self._commit_write(kind, old, new, opts, subresource), False

    def _commit_write(
        self,
        kind: ResourceKind,
        old: dict[str, Any],
        new: dict[str, Any],
        opts: WriteOptions,
        subresource: str | None,
    ) -> dict[str, Any]:
        if subresource == "status":
            if not kind.status:
                raise ApiError(404, "the server could not find the requested resource")
            status = new.get("status")
            new = clone(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        else:
            self._check_kind(kind, new, opts.version)
            if kind.status:
                if "status" in old:
                    new["status"] = clone(old["status"])
                else:
                    new.pop("status", None)
        meta = new.get("metadata")
        if not isinstance(meta, dict):
            meta = new["metadata"] = {}
        old_meta = old["metadata"]
        for key in ("name", "namespace", *_SERVER_META):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta.pop("managedFields", None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if kind.has_generation:
            meta["generation"] = old_meta.get("generation", 1)
        else:
            meta.pop("generation", None)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                cause = {
                    "reason": "FieldValueForbidden",
                    "message": "Forbidden: no new finalizers can be added if the object is "
                    "being deleted, found new finalizers " + go_strings(sorted(added)),
                    "field": "metadata.finalizers",
                }
                err = invalid(kind.kind, meta["name"], [cause], group=kind.group)
                if not kind.builtin and err.causes:  # upstream checks custom resources twice
                    err.causes.append(dict(cause))
                raise err
        if not meta.get("finalizers"):
            meta.pop("finalizers", None)
        new = self._admit(kind, new, old, opts)
        if kind.has_generation and _spec_part(new) != _spec_part(old):
            meta["generation"] = old_meta.get("generation", 1) + 1
        if new == old:
            return old
        if opts.dry_run:
            return new
        if old_meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self.store.commit(kind.key, new, "DELETED")
        return self.store.commit(kind.key, new, "MODIFIED")

    # -- scale -------------------------------------------------------------------------
    def scale_of(self, kind: ResourceKind, obj: dict[str, Any]) -> dict[str, Any]:
        assert kind.scale is not None
        from .tables import jsonpath_value

        spec_replicas = jsonpath_value(obj, kind.scale.spec_replicas)
        status_replicas = jsonpath_value(obj, kind.scale.status_replicas) or 0
        if kind.builtin:
            labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{k}={v}" for k, v in labels.items())
        else:
            path = kind.scale.label_selector
            selector = (jsonpath_value(obj, path) if path else "") or ""
        meta = obj["metadata"]
        status: dict[str, Any] = {"replicas": status_replicas}
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": spec_replicas if spec_replicas is not None else 0},
            "status": status,
        }

    def write_scale(
        self,
        kind: ResourceKind,
        namespace: str | None,
        name: str,
        scale: dict[str, Any],
        opts: WriteOptions,
    ) -> dict[str, Any]:
        assert kind.scale is not None
        old = self.get(kind, namespace, name)
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise self.conflict(kind, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise invalid(
                "Scale",
                name,
                [
                    {
                        "reason": "FieldValueInvalid",
                        "message": f"Invalid value: {replicas!r}: must be greater than or "
                        "equal to 0",
                        "field": "spec.replicas",
                    }
                ],
                group="autoscaling",
            )
        new = clone(old)
        target: Any = new
        parts = [p for p in kind.scale.spec_replicas.split(".") if p]
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        target[parts[-1]] = replicas
        obj = self._commit_write(kind, old, new, opts, None)
        return self.scale_of(kind, obj)
