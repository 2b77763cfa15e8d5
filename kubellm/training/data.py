"""Training text: where it comes from, its digest, the eval split and packing into blocks.

A dataset is a list of documents (strings). Sources:

- ``file://...`` or a plain path to a ``.txt`` (one document per non-empty line), a
  ``.jsonl`` (one JSON object per line, text in ``--text-field``), or a folder of them;
- ``s3://bucket/key`` (a file) or ``s3://bucket/prefix/`` (its .txt/.jsonl files), when boto3
  and credentials are present;
- a hub dataset id (``org/name``) when the hub is reachable.

The digest is a SHA-256 over the bytes read, so MLflow's dataset input says exactly which
data a model saw. Splitting and packing are pure functions: documents are shuffled with the
seed, split into train/eval, tokenised, joined with EOS and cut into full blocks, so every
training example has exactly ``sequence_length`` tokens (no padding: tokens/s is exact).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from kubellm.training.errors import DatasetError

__all__ = [
    "TEXT_SUFFIXES",
    "LoadedDataset",
    "dataset_kind",
    "load_dataset",
    "pack_blocks",
    "parse_documents",
    "split_documents",
]

TEXT_SUFFIXES = (".txt", ".jsonl")


@dataclass(frozen=True)
class LoadedDataset:
    documents: list[str]
    source: str  # the URI as given, for MLflow's dataset source
    name: str
    digest: str  # hex SHA-256 of the bytes read (first 16 digits)
    files: int


def dataset_kind(uri: str) -> str:
    """``file``, ``s3`` or ``hub``: decided from the URI's shape and what exists locally."""
    if uri.startswith("file://"):
        return "file"
    if uri.startswith("s3://"):
        return "s3"
    path = Path(uri)
    looks_like_path = uri.startswith(("/", ".", "~")) or path.suffix in TEXT_SUFFIXES
    if looks_like_path or path.exists():
        return "file"
    if uri.count("/") <= 1 and "://" not in uri:
        return "hub"
    raise DatasetError(f"dataset {uri!r}: not a path, s3:// URI or hub dataset id")


def parse_documents(text: str, suffix: str, text_field: str, origin: str) -> list[str]:
    """Documents of one file's text: lines of a .txt, ``text_field`` of each .jsonl record."""
    if suffix == ".txt":
        return [line.strip() for line in text.splitlines() if line.strip()]
    docs: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise DatasetError(f"{origin}:{number}: not valid JSON") from None
        if not isinstance(record, dict) or text_field not in record:
            raise DatasetError(f"{origin}:{number}: no field {text_field!r} in the record")
        value = record[text_field]
        if not isinstance(value, str):
            raise DatasetError(f"{origin}:{number}: field {text_field!r} is not a string")
        if value.strip():
            docs.append(value)
    return docs


def _read_files(files: Sequence[Path], text_field: str, uri: str) -> tuple[list[str], str]:
    digest = hashlib.sha256()
    docs: list[str] = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DatasetError(f"dataset {uri}: cannot read {path}: {exc.strerror}") from None
        digest.update(data)
        text = data.decode("utf-8", errors="replace")
        docs.extend(parse_documents(text, path.suffix, text_field, str(path)))
    return docs, digest.hexdigest()[:16]


def _local_files(root: Path, uri: str) -> list[Path]:
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.suffix in TEXT_SUFFIXES and p.is_file())
        if not files:
            raise DatasetError(f"dataset {uri}: no .txt or .jsonl files in the folder")
        return files
    if not root.exists():
        raise DatasetError(f"dataset {uri} does not exist")
    if root.suffix not in TEXT_SUFFIXES:
        raise DatasetError(f"dataset {uri}: expected a .txt or .jsonl file, got {root.suffix!r}")
    return [root]


def _s3_files(uri: str, into: Path) -> list[Path]:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise DatasetError(f"dataset {uri}: s3:// needs boto3 (pip install boto3)") from None
    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    try:
        s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        if key and not key.endswith("/"):
            keys = [key]
        else:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
            keys = [
                obj["Key"]
                for page in pages
                for obj in page.get("Contents", [])
                if obj["Key"].endswith(TEXT_SUFFIXES)
            ]
        files = []
        for i, k in enumerate(sorted(keys)):
            dst = into / f"{i:05d}{Path(k).suffix}"
            s3.download_file(bucket, k, str(dst))
            files.append(dst)
    except (BotoCoreError, ClientError) as exc:
        raise DatasetError(f"dataset {uri}: {exc}") from None
    if not files:
        raise DatasetError(f"dataset {uri}: no .txt or .jsonl objects")
    return files


def _hub_documents(repo_id: str, text_field: str) -> tuple[list[str], str]:
    """Documents of a hub dataset: via ``datasets`` when installed, else its raw files."""
    try:
        import datasets
    except ImportError:
        datasets = None
    try:
        if datasets is not None:
            ds = datasets.load_dataset(repo_id, split="train")
            if text_field not in ds.column_names:
                raise DatasetError(f"dataset {repo_id}: no column {text_field!r}")
            docs = [t for t in ds[text_field] if isinstance(t, str) and t.strip()]
            return docs, str(ds._fingerprint)[:16]
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            repo_id, repo_type="dataset", allow_patterns=[f"*{s}" for s in TEXT_SUFFIXES]
        )
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(
            f"dataset {repo_id}: cannot load from the hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else 'offline?'})"
        ) from None
    return _read_files(_local_files(Path(folder), repo_id), text_field, repo_id)


def load_dataset(uri: str, text_field: str = "text") -> LoadedDataset:
    """Read the documents of ``uri``; raise ``DatasetError`` naming the cause."""
    kind = dataset_kind(uri)
    if kind == "hub":
        docs, digest = _hub_documents(uri, text_field)
        files = 1
    elif kind == "s3":
        with tempfile.TemporaryDirectory(prefix="kubellm-s3-") as tmp:
            paths = _s3_files(uri, Path(tmp))
            docs, digest = _read_files(paths, text_field, uri)
            files = len(paths)
    else:
        path = Path(unquote(urlparse(uri).path)) if uri.startswith("file://") else Path(uri)
        paths = _local_files(path.expanduser(), uri)
        docs, digest = _read_files(paths, text_field, uri)
        files = len(paths)
    if not docs:
        raise DatasetError(f"dataset {uri} is empty: no text to train on")
    name = Path(urlparse(uri).path).name or uri
    return LoadedDataset(documents=docs, source=uri, name=name, digest=digest, files=files)


def split_documents(
    documents: Sequence[str], eval_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Shuffle with ``seed`` and hold out ``eval_fraction`` of the documents (at least one
    when the fraction is positive and there are two or more documents)."""
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    n_eval = round(len(documents) * eval_fraction)
    if eval_fraction > 0 and len(documents) > 1:
        n_eval = min(max(n_eval, 1), len(documents) - 1)
    eval_idx = set(order[:n_eval])
    train = [d for i, d in enumerate(documents) if i not in eval_idx]
    held = [d for i, d in enumerate(documents) if i in eval_idx]
    return train, held


def pack_blocks(
    token_lists: Iterable[Sequence[int]], block_size: int, eos_id: int
) -> list[list[int]]:
    """Join documents with EOS after each and cut into full blocks; drop the ragged tail."""
    stream: list[int] = []
    for ids in token_lists:
        stream.extend(ids)
        stream.append(eos_id)
    usable = (len(stream) // block_size) * block_size
    return [stream[i : i + block_size] for i in range(0, usable, block_size)]
