"""Prompts for the load test: a file (plain lines or JSONL) or a built-in set.

The operator mounts the LLM's prompts from a ConfigMap as a file; users mostly have either
one prompt per line or the JSONL they trained on (``{"prompt": ...}`` or ``{"text": ...}``).
Both load here, line by line, with errors that say which line of which file is wrong, and
without importing Locust, so the parsing is unit-tested in a plain process.
"""

from __future__ import annotations

import json
from pathlib import Path

from kubellm.loadtests.slo import InputError

__all__ = ["BUILTIN_PROMPTS", "load_prompts", "parse_prompts"]

# Short support-style questions: realistic lengths for a chat model without a prompt file.
BUILTIN_PROMPTS: tuple[str, ...] = (
    "How do I deploy a model?",
    "Why was my release refused?",
    "How do I roll back to the previous version?",
    "What does the candidate alias mean?",
    "How many replicas will I get under load?",
    "Summarise the last incident in two sentences.",
    "Write a short, polite reply to a customer asking for a refund.",
    "Explain what a p95 latency objective is to a new engineer.",
    "List three ways to reduce time to first token.",
    "Translate 'the service is healthy' into French.",
    "What is the capital of Australia?",
    "Give me a haiku about Kubernetes.",
)

_FIELDS = ("prompt", "text")


def parse_prompts(text: str, *, source: str = "prompts") -> list[str]:
    """Prompts from ``text``: one per non-blank line; a line starting with ``{`` is a JSON
    object whose ``prompt`` (or else ``text``) field holds the prompt."""
    prompts: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{source}:{number}: not valid JSON: {exc.msg}") from None
            value = next((record[k] for k in _FIELDS if k in record), None)
            if not isinstance(value, str) or not value.strip():
                raise InputError(
                    f"{source}:{number}: a JSON line needs a non-empty string field "
                    "'prompt' or 'text'"
                )
            prompts.append(value)
        else:
            prompts.append(line)
    if not prompts:
        raise InputError(f"{source}: no prompts found (the file has no non-blank lines)")
    return prompts


def load_prompts(path: Path | None) -> list[str]:
    """Prompts from ``path``, or the built-in set when ``path`` is None."""
    if path is None:
        return list(BUILTIN_PROMPTS)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--prompts: cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"--prompts: {str(path)!r} is not UTF-8 text") from None
    return parse_prompts(text, source=str(path))
