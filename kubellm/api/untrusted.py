"""JSON from outside the process: pods' termination messages, gateways, clients.

`json.loads` raises RecursionError, not ValueError, on text nested deeper than the
interpreter's recursion limit (``"[" * 100000``): a handler that catches ValueError for
malformed input lets that one escape. Everything that parses untrusted JSON goes through
`loads`, so "malformed" is one exception.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads"]


def loads(text: str | bytes) -> Any:
    """`json.loads`, with nesting too deep reported as the ValueError of any malformed text."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
