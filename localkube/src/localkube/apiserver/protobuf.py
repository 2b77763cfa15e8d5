"""Decoding of the protobuf request bodies kubectl's typed generators send.

`kubectl create namespace|configmap|secret` encode their body as Kubernetes protobuf
(`application/vnd.kubernetes.protobuf`): the magic `k8s\\x00`, then a `runtime.Unknown`
holding the TypeMeta and the object's own protobuf. Protobuf cannot be read without the
message schemas, so only these kinds' schemas are written down here (field numbers from
`k8s.io/api/core/v1/generated.proto`); other kinds get a 415 that names the way out
(`-f` manifests, which kubectl sends as JSON).
"""

from __future__ import annotations

import base64
from typing import Any

from .errors import ApiError

__all__ = ["decode_protobuf"]

MAGIC = b"k8s\x00"

# message -> field number -> (json name, kind); kinds: str, bytes, int, bool, msg:<name>,
# map:str (map<string,string>), map:bytes (map<string,bytes>), rstr (repeated string)
_SCHEMAS: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "msg:TypeMeta"), 2: ("raw", "bytes")},
    "TypeMeta": {1: ("apiVersion", "str"), 2: ("kind", "str")},
    "ObjectMeta": {
        1: ("name", "str"),
        2: ("generateName", "str"),
        3: ("namespace", "str"),
        11: ("labels", "map:str"),
        12: ("annotations", "map:str"),
        14: ("finalizers", "rstr"),
    },
    "Namespace": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:NamespaceSpec")},
    "NamespaceSpec": {1: ("finalizers", "rstr")},
    "ConfigMap": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("data", "map:str"),
        3: ("binaryData", "map:bytes"),
        4: ("immutable", "bool"),
    },
    "Secret": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("data", "map:bytes"),
        3: ("type", "str"),
        4: ("stringData", "map:str"),
        5: ("immutable", "bool"),
    },
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def _message(buf: bytes, name: str) -> dict[str, Any]:
    schema = _SCHEMAS[name]
    out: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number not in schema:
            continue
        key, kind = schema[number]
        if kind.startswith("msg:"):
            assert isinstance(value, bytes)
            out[key] = _message(value, kind[4:])
        elif kind == "str":
            assert isinstance(value, bytes)
            out[key] = value.decode()
        elif kind == "bytes":
            out[key] = value
        elif kind == "bool":
            out[key] = bool(value)
        elif kind == "int":
            out[key] = value
        elif kind == "rstr":
            assert isinstance(value, bytes)
            out.setdefault(key, []).append(value.decode())
        elif kind.startswith("map:"):
            assert isinstance(value, bytes)
            entry = dict(_fields(value))
            k, v = entry.get(1, b""), entry.get(2, b"")
            assert isinstance(k, bytes) and isinstance(v, bytes)
            out.setdefault(key, {})[k.decode()] = (
                v.decode() if kind == "map:str" else base64.b64encode(v).decode()
            )
    return out


def decode_protobuf(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded Namespace, ConfigMap or Secret; else 415."""
    if not body.startswith(MAGIC):
        raise ApiError(415, "the body of the request was in an unknown format: protobuf")
    try:
        unknown = _message(body[len(MAGIC) :], "Unknown")
        type_meta = unknown.get("typeMeta", {})
        kind = type_meta.get("kind", "")
        if kind not in ("Namespace", "ConfigMap", "Secret"):
            raise ApiError(
                415,
                f"localkube decodes protobuf bodies only for Namespace, ConfigMap and Secret, "
                f"not {kind or 'this kind'}: create it from a manifest (kubectl create/apply "
                "-f), which kubectl sends as JSON",
            )
        obj = _message(unknown.get("raw", b""), kind)
    except (IndexError, ValueError, AssertionError, UnicodeDecodeError) as e:
        raise ApiError(400, f"the protobuf body could not be decoded: {e}") from e
    return {"apiVersion": type_meta.get("apiVersion", "v1"), "kind": kind, **obj}
