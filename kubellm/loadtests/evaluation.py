"""The evaluation set of the quality gate: prompts, some with a reference answer.

It comes from the LLM's author (a ConfigMap the operator mounts, or a dataset URI like
training's: a path, ``file://`` or ``s3://bucket/key``), so it is untrusted input and read
with bounds: the file's size, the number of items, each prompt's and reference's length.
Two formats, told apart by their first character:

- JSON lines: one ``{"prompt": ..., "reference": ...}`` object per line (``reference``
  optional; ``text`` is accepted for ``prompt``, as in the load test's prompt files);
- a YAML list of the same mappings (``- prompt: ...``).

Every refusal is an ``InputError`` naming the source and, where there is one, the item.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from kubellm.api import untrusted
from kubellm.loadtests.slo import InputError

__all__ = [
    "MAX_EVALUATION_BYTES",
    "MAX_EVALUATION_ITEMS",
    "MAX_PROMPT_CHARS",
    "MAX_REFERENCE_CHARS",
    "EvalItem",
    "load_evaluation",
    "parse_evaluation",
]

#: the largest evaluation file read (a ConfigMap holds at most 1 MiB)
MAX_EVALUATION_BYTES = 4 * 1024 * 1024
#: the most items an evaluation set may hold (``--eval-max-prompts`` takes fewer)
MAX_EVALUATION_ITEMS = 1000
MAX_PROMPT_CHARS = 8192
MAX_REFERENCE_CHARS = 2048


@dataclass(frozen=True)
class EvalItem:
    prompt: str
    reference: str | None = None


def _item(record: object, where: str) -> EvalItem:
    if not isinstance(record, dict):
        raise InputError(f"{where}: an item must be a mapping with 'prompt' (and 'reference')")
    prompt = record.get("prompt", record.get("text"))
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f"{where}: 'prompt' must be a non-empty string")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(
            f"{where}: the prompt has {len(prompt)} characters; at most {MAX_PROMPT_CHARS}"
        )
    reference = record.get("reference")
    if reference is not None:
        if not isinstance(reference, str) or not reference.strip():
            raise InputError(f"{where}: 'reference' must be a non-empty string when given")
        if len(reference) > MAX_REFERENCE_CHARS:
            raise InputError(
                f"{where}: the reference has {len(reference)} characters; "
                f"at most {MAX_REFERENCE_CHARS}"
            )
    try:
        prompt.encode("utf-8")
        (reference or "").encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{where}: not valid UTF-8 text") from None
    return EvalItem(prompt, reference)


def _records_yaml(text: str, source: str) -> list[object]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise InputError(f"{source}: YAML nested too deep") from None
    if not isinstance(data, list):
        raise InputError(f"{source}: a YAML evaluation set must be a list of items")
    return data


def _records_jsonl(text: str, source: str) -> list[tuple[object, str]]:
    records: list[tuple[object, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if len(records) >= MAX_EVALUATION_ITEMS:
            raise InputError(f"{source}: more than {MAX_EVALUATION_ITEMS} items")
        try:
            records.append((untrusted.loads(line), f"{source}:{number}"))
        except ValueError as exc:
            raise InputError(f"{source}:{number}: not valid JSON ({exc})") from None
    return records


def parse_evaluation(text: str, *, source: str = "evaluation") -> list[EvalItem]:
    """The items of an evaluation set's text (JSON lines, or a YAML list)."""
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_EVALUATION_BYTES:
        raise InputError(f"{source}: larger than {MAX_EVALUATION_BYTES} bytes")
    stripped = text.lstrip()
    if not stripped:
        raise InputError(f"{source}: the evaluation set has no items")
    if stripped.startswith("{"):
        records = _records_jsonl(text, source)
    else:
        data = _records_yaml(text, source)
        if len(data) > MAX_EVALUATION_ITEMS:
            raise InputError(f"{source}: {len(data)} items; at most {MAX_EVALUATION_ITEMS}")
        records = [(r, f"{source}: item {i}") for i, r in enumerate(data, start=1)]
    items = [_item(record, where) for record, where in records]
    if not items:
        raise InputError(f"{source}: the evaluation set has no items")
    return items


def _read_bounded(path: Path, source: str) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_EVALUATION_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{source}: cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if len(data) > MAX_EVALUATION_BYTES:
        raise InputError(f"{source}: larger than {MAX_EVALUATION_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text") from None


def _read_s3(uri: str) -> str:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise InputError(f"{uri}: s3:// needs boto3 (pip install boto3)") from None
    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if not bucket or not key or key.endswith("/"):
        raise InputError(f"{uri}: an evaluation set is one object, s3://bucket/key")
    try:
        s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        obj = s3.get_object(Bucket=bucket, Key=key)
        if int(obj.get("ContentLength") or 0) > MAX_EVALUATION_BYTES:
            raise InputError(f"{uri}: larger than {MAX_EVALUATION_BYTES} bytes")
        data = obj["Body"].read(MAX_EVALUATION_BYTES + 1)
    except (BotoCoreError, ClientError) as exc:
        raise InputError(f"{uri}: {exc}") from None
    if len(data) > MAX_EVALUATION_BYTES:
        raise InputError(f"{uri}: larger than {MAX_EVALUATION_BYTES} bytes")
    try:
        return str(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{uri}: not UTF-8 text") from None


def load_evaluation(uri: str, *, limit: int = MAX_EVALUATION_ITEMS) -> list[EvalItem]:
    """The first ``limit`` items of the set at ``uri`` (a path, ``file://`` or ``s3://``)."""
    source = f"--evaluation {uri}"
    if uri.startswith("s3://"):
        text = _read_s3(uri)
    elif uri.startswith("file://") or "://" not in uri:
        path = Path(unquote(urlparse(uri).path)) if uri.startswith("file://") else Path(uri)
        text = _read_bounded(path.expanduser(), source)
    else:
        raise InputError(f"{source}: not a path, file:// or s3:// URI")
    return parse_evaluation(text, source=source)[:limit]
