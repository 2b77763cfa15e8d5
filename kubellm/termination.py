"""The termination message: how a Job's container tells the operator its result.

Kubernetes copies the file at ``terminationMessagePath`` (default
``/dev/termination-log``) into ``status.containerStatuses[].state.terminated.message``,
at most 4096 bytes. localkube exports ``KUBELLM_TERMINATION_LOG`` pointing at a per-pod
file, so the same code works on a laptop and in a cluster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kubellm.redaction import redact_tree

__all__ = ["MAX_BYTES", "fit_json", "termination_log_path", "write_termination_message"]

MAX_BYTES = 4096


def termination_log_path() -> Path:
    return Path(os.environ.get("KUBELLM_TERMINATION_LOG", "/dev/termination-log"))


def fit_json(summary: dict[str, Any], limit: int = MAX_BYTES) -> str:
    """Serialise ``summary`` to at most ``limit`` bytes.

    Large string values are truncated first (error messages, reasons), then optional keys are
    dropped from the end, so the operator always gets valid JSON rather than a cut-off string.
    Userinfo of URIs is redacted: the message ends up in the pod's status and the LLM's.
    """
    summary = redact_tree(json.loads(json.dumps(summary, default=str)))
    text = json.dumps(summary, separators=(",", ":"), default=str)
    if len(text.encode()) <= limit:
        return text
    trimmed: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, str) and len(value) > 512:
            value = value[:509] + "..."
        trimmed[key] = value
    text = json.dumps(trimmed, separators=(",", ":"), default=str)
    keys = list(trimmed)
    while len(text.encode()) > limit and keys:
        trimmed.pop(keys.pop())
        trimmed["truncated"] = True
        text = json.dumps(trimmed, separators=(",", ":"), default=str)
    return text


def write_termination_message(summary: dict[str, Any]) -> str:
    """Write ``summary`` as JSON (<= 4 KiB) to the termination log; ignore an unwritable path.

    Returns the text written so callers can echo it to stdout too.
    """
    text = fit_json(summary)
    path = termination_log_path()
    try:
        path.write_text(text)
    except OSError:
        pass  # outside a pod /dev/termination-log may not be writable; stdout still has it
    return text
