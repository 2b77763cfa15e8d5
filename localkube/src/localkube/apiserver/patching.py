"""The four PATCH content types, as pure functions `(object, patch) -> object`.

* JSON merge patch (RFC 7386): null deletes, lists are replaced.
* JSON patch (RFC 6902) via `jsonpatch`: a failed op or `test` is a 422, as in the
  apiserver's `handlers/patch.go`; kopf relies on exactly that code for its finalizer
  updates guarded by a resourceVersion `test`. As in evanphx/json-patch v4 (what
  kube-apiserver applies), `replace` of a missing object member adds it.
* Strategic merge patch for built-in kinds: lists merged by their patch-merge key
  (containers by `name`, ports by `containerPort`, ...), `$patch` directives honoured,
  kubectl's `$setElementOrder`/`$retainKeys`/`$deleteFromPrimitiveList` handled.
* Server-side apply is reduced to "create or deep-merge" (no managed fields); its YAML is
  read as Go reads it (`5e-4` is a number, `yes` a boolean), not as PyYAML does.

Decoding errors carry kube-apiserver's messages, which quote Go's JSON decoder.
"""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
import jsonpointer
import yaml

from kubellm.api import goyaml

from .errors import ApiError
from .meta import clone

__all__ = [
    "PATCH_TYPES",
    "apply_patch",
    "check_patch_type",
    "decode_patch",
    "json_patch",
    "merge_patch",
    "strategic_merge_patch",
]

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE, JSON, STRATEGIC, APPLY)

# Patch merge keys of the built-in types, by field name (the names do not collide in the
# kinds we serve, except `ports`, resolved by the item shape).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
_PRIMITIVE_SET_LISTS = {"finalizers"}
_REJECTED = "the server rejected our request due to an error in our request"
_GO_MAP = "map[string]interface {}"


def _go_json_type(value: Any) -> str:
    """How Go's encoding/json names a JSON value's type in an unmarshal error."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _cannot_unmarshal(value: Any, go_type: str, prefix: str = "error decoding patch: ") -> ApiError:
    return ApiError(
        400,
        f"{prefix}json: cannot unmarshal {_go_json_type(value)} into Go value of type {go_type}",
    )


def check_patch_type(content_type: str, *, builtin: bool) -> None:
    """415 for a content type the kind does not take (strategic merge only for built-ins)."""
    if content_type in PATCH_TYPES and (builtin or content_type != STRATEGIC):
        return
    if builtin:
        raise ApiError(415, "415: Unsupported Media Type")
    raise ApiError(
        415,
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    )


def decode_patch(content_type: str, raw: bytes) -> Any:
    """The patch document; JSON that does not parse is upstream's 400 `invalid JSON patch`."""
    if content_type == APPLY:
        try:
            return goyaml.load(raw.decode())
        except (UnicodeDecodeError, yaml.YAMLError) as e:
            raise ApiError(400, f"error decoding YAML: {e}") from e
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError as e:
        raise ApiError(400, "invalid JSON patch") from e


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = merge_patch(result.get(key), value)
        else:
            result[key] = clone(value)
    return result


def _replace_adds(doc: Any, op: dict[str, Any]) -> dict[str, Any]:
    """json-patch v4: `replace` of a missing member of an object adds it."""
    if op.get("op") != "replace" or not isinstance(op.get("path"), str):
        return op
    try:
        pointer = jsonpointer.JsonPointer(op["path"])
        parent, key = pointer.to_last(doc)
    except (jsonpointer.JsonPointerException, TypeError, KeyError, IndexError):
        return op
    if isinstance(parent, dict) and key not in parent:
        return {**op, "op": "add"}
    return op


def json_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """RFC 6902; 400 for a document that is not a list of objects, 422 for an op that fails."""
    if patch is None:
        return clone(target)  # type: ignore[no-any-return]
    if not isinstance(patch, list):
        raise _cannot_unmarshal(patch, "[]handlers.jsonPatchOp")
    for op in patch:
        if not isinstance(op, dict):
            raise _cannot_unmarshal(op, "handlers.jsonPatchOp")
    doc: Any = clone(target)
    try:
        for op in patch:
            doc = jsonpatch.JsonPatch([_replace_adds(doc, op)]).apply(doc, in_place=True)
    except (
        jsonpatch.JsonPatchException,
        jsonpointer.JsonPointerException,
        TypeError,
        KeyError,
        IndexError,
    ) as e:
        raise ApiError(422, _REJECTED) from e
    if not isinstance(doc, dict):
        raise ApiError(422, _REJECTED)
    return doc  # type: ignore[no-any-return]


_DELETE = object()


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        dicts = [i for i in items if isinstance(i, dict)]
        if dicts and all("containerPort" in i for i in dicts):
            return "containerPort"
        return "port"
    return _MERGE_KEYS.get(field)


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_directives(v)
            for k, v in value.items()
            if not k.startswith("$setElementOrder/")
            and not k.startswith("$deleteFromPrimitiveList/")
            and k not in ("$retainKeys", "$patch")
        }
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _smp_list(field: str, original: Any, patch: list[Any]) -> Any:
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_strip_directives(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    key = _merge_key(field, patch + (original if isinstance(original, list) else []))
    if field in _PRIMITIVE_SET_LISTS and all(not isinstance(i, dict | list) for i in patch):
        base = list(original) if isinstance(original, list) else []
        return base + [i for i in patch if i not in base]
    if key is None or not all(isinstance(i, dict) for i in patch):
        return _strip_directives(patch)
    result = [clone(i) for i in original] if isinstance(original, list) else []
    for item in patch:
        directive = item.get("$patch")
        idx = next(
            (
                n
                for n, cur in enumerate(result)
                if isinstance(cur, dict) and key in item and cur.get(key) == item.get(key)
            ),
            None,
        )
        if directive == "delete":
            if idx is not None:
                result.pop(idx)
            continue
        if idx is None:
            result.append(_strip_directives(item))
        else:
            result[idx] = strategic_merge_patch(result[idx], item)
    return result


def strategic_merge_patch(original: Any, patch: Any) -> Any:
    """Strategic merge patch of the built-in kinds (see module docstring)."""
    if not isinstance(patch, dict):
        raise _cannot_unmarshal(patch, _GO_MAP, prefix="")
    directive = patch.get("$patch")
    if directive == "replace":
        return _strip_directives(patch)
    if directive == "delete":
        return _DELETE
    result = clone(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value)
        else:
            result[key] = value
    return result


def apply_patch(
    content_type: str, target: dict[str, Any], patch: Any, *, builtin: bool
) -> dict[str, Any]:
    """Dispatch on the PATCH content type; 415 for unsupported combinations."""
    check_patch_type(content_type, builtin=builtin)
    if content_type == MERGE:
        if patch is None:
            raise ApiError(400, "Invalid JSON Patch")
        if not isinstance(patch, dict):
            raise _cannot_unmarshal(patch, _GO_MAP)
        return merge_patch(target, patch)  # type: ignore[no-any-return]
    if content_type == JSON:
        return json_patch(target, patch)
    if content_type == STRATEGIC:
        if patch is None:
            return clone(target)  # type: ignore[no-any-return]
        result = strategic_merge_patch(target, patch)
        return {} if result is _DELETE else result  # type: ignore[no-any-return]
    if not isinstance(patch, dict):
        raise ApiError(400, "apply patch must be an object")
    if builtin:
        return strategic_merge_patch(target, patch)  # type: ignore[no-any-return]
    return merge_patch(target, patch)  # type: ignore[no-any-return]
