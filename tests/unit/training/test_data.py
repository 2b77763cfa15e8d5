"""Dataset sources, digests, the eval split and block packing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kubellm.training.data import (
    dataset_kind,
    load_dataset,
    pack_blocks,
    parse_documents,
    split_documents,
)
from kubellm.training.errors import DatasetError


def test_txt_gives_one_document_per_non_empty_line(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("first line\n\n  second line  \n")
    ds = load_dataset(str(path))
    assert ds.documents == ["first line", "second line"]
    assert len(ds.digest) == 16 and ds.name == "a.txt"


def test_file_uri_and_plain_path_read_the_same_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("hello\n")
    assert load_dataset(path.as_uri()).digest == load_dataset(str(path)).digest


def test_jsonl_reads_the_text_field(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"p{i}", "text": f"t{i}"}) for i in range(3)))
    assert load_dataset(str(path), "text").documents == ["t0", "t1", "t2"]
    assert load_dataset(str(path), "prompt").documents == ["p0", "p1", "p2"]


def test_jsonl_without_the_field_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "ok"}\n{"body": "no"}\n')
    with pytest.raises(DatasetError, match=r"a.jsonl:2: no field 'text'"):
        load_dataset(str(path))


def test_a_folder_reads_its_text_files_in_order(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("second\n")
    (tmp_path / "a.txt").write_text("first\n")
    (tmp_path / "notes.md").write_text("ignored\n")
    ds = load_dataset(str(tmp_path))
    assert ds.documents == ["first", "second"] and ds.files == 2


def test_missing_and_empty_datasets_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(DatasetError, match="is empty"):
        load_dataset(str(tmp_path / "empty.txt"))


def test_wrong_file_type_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DatasetError, match=r"expected a \.txt or \.jsonl"):
        load_dataset(str(tmp_path / "data.csv"))


def test_kind_of_uri() -> None:
    assert dataset_kind("file:///x/a.txt") == "file"
    assert dataset_kind("s3://bucket/key.txt") == "s3"
    assert dataset_kind("./a.txt") == "file"
    assert dataset_kind("org/support-tickets") == "hub"


def test_s3_without_boto3_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError
    with pytest.raises(DatasetError, match="s3:// needs boto3"):
        load_dataset("s3://bucket/corpus.txt")


def test_hub_dataset_offline_is_a_dataset_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetError, match="cannot load from the hub"):
        load_dataset("no-such-org/no-such-dataset")


def test_parse_documents_rejects_non_json_lines() -> None:
    with pytest.raises(DatasetError, match=r"x\.jsonl:1: not valid JSON"):
        parse_documents("{oops\n", ".jsonl", "text", "x.jsonl")


def test_split_is_seeded_and_holds_out_at_least_one_document() -> None:
    docs = [f"d{i}" for i in range(10)]
    train, held = split_documents(docs, 0.01, seed=1)
    assert len(held) == 1 and len(train) == 9 and set(train) | set(held) == set(docs)
    assert split_documents(docs, 0.3, seed=1) == split_documents(docs, 0.3, seed=1)
    assert split_documents(docs, 0.0, seed=1) == (docs, [])


def test_pack_blocks_joins_with_eos_and_drops_the_ragged_tail() -> None:
    blocks = pack_blocks([[1, 2, 3], [4, 5]], block_size=3, eos_id=0)
    assert blocks == [[1, 2, 3], [0, 4, 5]]
