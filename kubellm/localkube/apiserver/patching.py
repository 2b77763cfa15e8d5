"""The four PATCH content types, as pure functions `(object, patch) -> object`.

* JSON merge patch (RFC 7386): null deletes, lists are replaced.
* JSON patch (RFC 6902) via `jsonpatch`: a failed op or `test` is a 422, as in the
  apiserver's `handlers/patch.go`; kopf relies on exactly that code for its finalizer
  updates guarded by a resourceVersion `test`.
* Strategic merge patch for built-in kinds: lists merged by their patch-merge key
  (containers by `name`, ports by `containerPort`, ...), `$patch` directives honoured,
  kubectl's `$setElementOrder`/`$retainKeys`/`$deleteFromPrimitiveList` handled.
* Server-side apply is reduced to "create or deep-merge" (no managed fields).
"""

from __future__ import annotations

from typing import Any

import jsonpatch
import jsonpointer

from .errors import ApiError
from .meta import clone

__all__ = ["PATCH_TYPES", "apply_patch", "json_patch", "merge_patch", "strategic_merge_patch"]

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


def json_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """RFC 6902; 400 for a malformed document, 422 for an op that fails."""
    if not isinstance(patch, list):
        raise ApiError(400, "json patch must be a list of operations")
    try:
        ops = jsonpatch.JsonPatch(patch)
    except (jsonpatch.InvalidJsonPatch, TypeError, KeyError) as e:
        raise ApiError(400, f"invalid JSON patch: {e}") from e
    try:
        result = ops.apply(clone(target), in_place=True)
    except jsonpatch.JsonPatchTestFailed as e:
        raise ApiError(
            422, f"the server rejected our request due to an error in our request: {e}"
        ) from e
    except jsonpatch.InvalidJsonPatch as e:
        raise ApiError(400, f"invalid JSON patch: {e}") from e
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException, IndexError) as e:
        raise ApiError(
            422, f"the server rejected our request due to an error in our request: {e}"
        ) from e
    if not isinstance(result, dict):
        raise ApiError(422, "json patch must leave an object")
    return result


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
        raise ApiError(400, "strategic merge patch must be an object")
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
    if content_type == MERGE:
        if not isinstance(patch, dict):
            raise ApiError(400, "merge patch must be a JSON object")
        return merge_patch(target, patch)  # type: ignore[no-any-return]
    if content_type == JSON:
        return json_patch(target, patch)
    if content_type == STRATEGIC:
        if not builtin:
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            )
        result = strategic_merge_patch(target, patch)
        return {} if result is _DELETE else result  # type: ignore[no-any-return]
    if content_type == APPLY:
        if not isinstance(patch, dict):
            raise ApiError(400, "apply patch must be an object")
        if builtin:
            return strategic_merge_patch(target, patch)  # type: ignore[no-any-return]
        return merge_patch(target, patch)  # type: ignore[no-any-return]
    raise ApiError(
        415,
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(PATCH_TYPES)}",
    )
