"""YAML that Go programs read back with the types we meant, and a reader that reads like Go.

kubectl, helm, client-go and the apiserver turn YAML into JSON with `sigs.k8s.io/yaml`, whose
reader is a fork of go-yaml v2. It types a plain (unquoted) scalar by YAML 1.1 words
(`y`, `yes`, `on`, `off`, `null`, `~`, ...) and by Go's number parsers after dropping every
`_` (`5e-4`, `1e3`, `.5`, `0x1F`, `0o17`, `017`, `08`, `1_000`). PyYAML follows YAML 1.1,
for which `5e-4` is a string, so it writes such strings unquoted and Go reads a float: a CRD
default meant as `"5e-4"` reaches the apiserver as `0.0005`, and a real apiserver refuses a
CRD whose defaults do not match their own schema. Both directions live here:

- `dump` quotes every string that Go, a YAML 1.2 (core schema) or a YAML 1.1 reader would
  type as anything but a string, so each scalar keeps its type whoever reads the file.
- `load`/`load_all` read YAML as `sigs.k8s.io/yaml` does (YAML to JSON), so a check such as
  `kubellm validate` or a test of the committed CRD sees what a cluster will see.

`go_scalar` follows `resolve()` of go.yaml.in/yaml/v2 (v2.4) line by line; go-yaml keeps
timestamp-like plain scalars as strings when decoding into `interface{}`, and so does this.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import yaml
from yaml.nodes import Node, ScalarNode
from yaml.resolver import Resolver

__all__ = ["GoLoader", "GoSafeDumper", "dump", "go_scalar", "load", "load_all", "reads_as_string"]

STR_TAG = "tag:yaml.org,2002:str"
_GO_PLAIN_TAG = "tag:kubellm.dev,2025:go-plain"
_MERGE_TAG = "tag:yaml.org,2002:merge"

_GO_WORDS: dict[str, Any] = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE"), True),
    **dict.fromkeys(("on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE"), False),
    **dict.fromkeys(("off", "Off", "OFF"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
# strconv.ParseInt(s, 0, 64): optional sign, then a base prefix or a leading 0 for octal.
_GO_INT = re.compile(
    r"(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
    r"|(?P<octal1>0[0-7]*)|(?P<dec>[1-9][0-9]*))"
)
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1
_YAML11 = Resolver()


def _go_parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), falling back to ParseUint, as go-yaml tries them."""
    m = _GO_INT.fullmatch(text)
    if m is None:
        return None
    if m["hex"]:
        value = int(m["hex"], 16)
    elif m["oct"]:
        value = int(m["oct"], 8)
    elif m["bin"]:
        value = int(m["bin"], 2)
    elif m["octal1"]:
        value = int(m["octal1"], 8)
    else:
        value = int(m["dec"])
    if m["sign"] == "-":
        value = -value
    if _INT64[0] <= value <= _INT64[1]:
        return value
    if not m["sign"] and value <= _UINT64_MAX:
        return value
    return None


def _go_parse_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64) for decimal literals: out of range is an error.

    Python's float() has the same rules for the forms that reach it here (decimal digits,
    `_` only between digits, an optional exponent).
    """
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isinf(value) else value


def go_scalar(text: str) -> Any:
    """The value go-yaml v2 gives a plain scalar: bool, None, int, float, or the string."""
    if text in _GO_WORDS:
        return _GO_WORDS[text]
    head = text[:1]
    if head == ".":  # strconv.ParseFloat on the text as is (`_` only between digits)
        value = _go_parse_float(text)
        if value is not None:
            return value
    elif head and head in "+-0123456789":
        plain = text.replace("_", "")
        number: int | float | None = _go_parse_int(plain)
        if number is not None:
            return number
        if _YAML_STYLE_FLOAT.fullmatch(plain):
            number = _go_parse_float(plain)
            if number is not None:
                return number
    return text


def reads_as_string(text: str) -> bool:
    """Whether a plain scalar ``text`` reads back as a string in Go and in YAML 1.1.

    go-yaml v2 types everything that the YAML 1.2 core schema does (a test pins that), so
    these two readers cover YAML 1.2 as well.
    """
    if not isinstance(go_scalar(text), str):
        return False
    return _YAML11.resolve(ScalarNode, text, (True, False)) == STR_TAG


class GoSafeDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting strings that some reader would not read as strings."""

    def represent_go_str(self, data: str) -> Node:
        if not reads_as_string(data):
            return self.represent_scalar(STR_TAG, data, style="'")
        return self.represent_str(data)


GoSafeDumper.add_representer(str, GoSafeDumper.represent_go_str)


def dump(data: Any, *, sort_keys: bool = False, width: int = 100) -> str:
    """YAML text for ``data`` that Go, YAML 1.2 and YAML 1.1 readers all type alike."""
    return yaml.dump(data, Dumper=GoSafeDumper, sort_keys=sort_keys, width=width)


class GoLoader(yaml.SafeLoader):
    """Types plain scalars as go-yaml v2 does; quoted and tagged scalars as PyYAML does."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is ScalarNode and implicit[0] and value != "<<":
            return _GO_PLAIN_TAG
        return str(super().resolve(kind, value, implicit))

    def construct_go_plain(self, node: Node) -> Any:
        return go_scalar(str(self.construct_scalar(node)))  # type: ignore[arg-type]


GoLoader.add_constructor(_GO_PLAIN_TAG, GoLoader.construct_go_plain)
# `<<` is a merge key in a mapping's key position (handled before construction); elsewhere
# go-yaml reads it as the string.
GoLoader.add_constructor(_MERGE_TAG, lambda loader, node: "<<")


def _json_key(key: Any) -> str:
    """How sigs.k8s.io/yaml turns a non-string map key into a JSON one."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(key, ".nan" if key != key else f"{key:g}")
    if isinstance(key, str):
        return key
    raise ValueError(f"unsupported map key of type {type(key).__name__}: {key!r}")


def _to_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {_json_key(k): _to_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_json(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"json: unsupported value: {obj}")  # Go's json.Marshal refuses it
    return obj


def load(text: str) -> Any:
    """One YAML document as the JSON a Go client sends for it."""
    return _to_json(yaml.load(text, Loader=GoLoader))  # GoLoader is a SafeLoader


def load_all(text: str) -> Iterator[Any]:
    """Every document of a YAML stream as the JSON a Go client sends for it."""
    for doc in yaml.load_all(text, Loader=GoLoader):
        yield _to_json(doc)
