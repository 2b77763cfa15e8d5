"""Small helpers on JSON objects: copying, names, nested paths.

Stored objects are treated as immutable once committed; every writer works on a
:func:`clone`. Copies are on the hot path of every write, so a hand-written copier does
only what JSON-shaped data needs, without `copy.deepcopy`'s memo and type dispatch.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

__all__ = [
    "clone",
    "dig",
    "go_strings",
    "random_suffix",
    "validate_name",
]

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's alphabet (no vowels)
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def clone(value: Any) -> Any:
    """Deep copy of JSON-shaped data (dicts, lists, scalars)."""
    if isinstance(value, dict):
        return {k: clone(v) if isinstance(v, dict | list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) if isinstance(v, dict | list) else v for v in value]
    return value


def random_suffix(length: int = 5) -> str:
    return "".join(random.choice(_SUFFIX_ALPHABET) for _ in range(length))


def go_strings(values: list[str]) -> str:
    """A string list as Go's `%#v` prints a []string: `[]string{"a", "b"}`."""
    return "[]string{" + ", ".join(json.dumps(v) for v in values) + "}"


def validate_name(name: str) -> str | None:
    """None if `name` is a valid DNS-1123 subdomain, else the apiserver's message."""
    if len(name) > 253:
        return "must be no more than 253 characters"
    if not _DNS_SUBDOMAIN.match(name):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
            "characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return None


def dig(obj: Any, *path: str | int) -> Any:
    """`obj[p0][p1]...`, or None when any step is missing."""
    for part in path:
        if isinstance(part, int):
            if not isinstance(obj, list) or part >= len(obj):
                return None
            obj = obj[part]
        else:
            if not isinstance(obj, dict):
                return None
            obj = obj.get(part)
        if obj is None:
            return None
    return obj
