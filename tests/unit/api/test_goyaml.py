"""YAML we write keeps its types when Go reads it, and goyaml.load reads YAML as Go does.

Every expected value in GO_READS was produced by Go: `sigs.k8s.io/yaml` v1.6.0
`YAMLToJSON("v: <text>")` (go.yaml.in/yaml/v2 v2.4.4 underneath), built with go1.26.8, the
reader kubectl, helm and client-go use.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubellm.api import goyaml
from kubellm.cli import main

# text of a plain scalar -> the JSON value Go makes of it
GO_READS: list[tuple[str, Any]] = [
    ("5e-4", 0.0005),
    ("3e-3", 0.003),
    ("1e3", 1000),
    ("1E3", 1000),
    ("+1e3", 1000),
    ("-5e-4", -0.0005),
    ("1.0e3", 1000),
    (".5", 0.5),
    ("-.5", -0.5),
    ("+.5", 0.5),
    (".5e3", 500),
    (".5_0", 0.5),
    ("0.1", 0.1),
    ("0x1F", 31),
    ("0X1F", 31),
    ("-0x1F", -31),
    ("0o17", 15),
    ("0O17", 15),
    ("-0o17", -15),
    ("017", 15),
    ("08", 8),
    ("09.5", 9.5),
    ("0b101", 5),
    ("-0b101", -5),
    ("1_000", 1000),
    ("1_0.5", 10.5),
    ("0", 0),
    ("-0", 0),
    ("+7", 7),
    ("12345678901234567890", 12345678901234567890),
    ("123456789012345678901234", 1.2345678901234569e23),
    ("y", True),
    ("Y", True),
    ("n", False),
    ("N", False),
    ("yes", True),
    ("No", False),
    ("on", True),
    ("OFF", False),
    ("true", True),
    ("False", False),
    ("null", None),
    ("~", None),
    ("Null", None),
    # strings for Go (some are not for YAML 1.1, which dump() also respects)
    ("1e999", "1e999"),
    ("2001-12-14", "2001-12-14"),
    ("2006-1-2", "2006-1-2"),
    ("1:20", "1:20"),
    ("190:20:30", "190:20:30"),
    ("1.2.3", "1.2.3"),
    ("0x", "0x"),
    ("0x1p-2", "0x1p-2"),
    ("inf", "inf"),
    ("Infinity", "Infinity"),
    ("nan", "nan"),
    (".", "."),
    ("._5", "._5"),
    ("abc", "abc"),
    ("1.5Gi", "1.5Gi"),
    ("500m", "500m"),
    ("10s", "10s"),
    ("v1alpha1", "v1alpha1"),
    ("=", "="),
]

# Non-strings of the YAML 1.2 core schema (spec 10.3.2): Go types each of them too, so the
# two readers that dump() satisfies (Go, YAML 1.1) cover YAML 1.2.
YAML12_CORE_NON_STRINGS = [
    "null", "Null", "NULL", "~", "true", "True", "TRUE", "false", "False", "FALSE",
    "0", "-19", "+12", "0o14", "0xC", "0xc", "1.", "-1.5", "+1.5", ".5", "1e3", "1.5E+3",
    "-2.5e-3", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", ".NAN",
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), GO_READS, ids=[t for t, _ in GO_READS])
def test_load_types_plain_scalars_as_go_does(text: str, expected: Any) -> None:
    value = goyaml.load(f"v: {text}\n")["v"]
    assert value == expected
    assert isinstance(value, str) == isinstance(expected, str)
    assert isinstance(value, bool) == isinstance(expected, bool)


@pytest.mark.parametrize("text", YAML12_CORE_NON_STRINGS)
def test_go_types_every_yaml12_core_non_string(text: str) -> None:
    assert not isinstance(goyaml.go_scalar(text), str)


def test_go_refuses_infinity_in_json_as_load_does() -> None:
    with pytest.raises(ValueError, match="unsupported value"):
        goyaml.load("v: .inf\n")
    assert math.isinf(goyaml.go_scalar(".inf"))


def test_load_turns_keys_into_json_strings_as_go_does() -> None:
    text = 'y: 1\n1e3: a\n"x": <<\nbase: &b {a: 1}\nm:\n  <<: *b\n  c: 2\n'
    # Go: {"1000":"a","base":{"a":1},"m":{"a":1,"c":2},"true":1,"x":"<<"}
    assert goyaml.load(text) == {
        "true": 1,
        "1000": "a",
        "x": "<<",
        "base": {"a": 1},
        "m": {"a": 1, "c": 2},
    }


def test_quoted_scalars_stay_strings() -> None:
    assert goyaml.load("a: '5e-4'\nb: \"yes\"\nc: !!str 0x1F\n") == {
        "a": "5e-4",
        "b": "yes",
        "c": "0x1F",
    }


def test_pyyaml_safe_dump_loses_the_type_and_dump_keeps_it() -> None:
    data = {"learningRate": "5e-4"}
    assert goyaml.load(yaml.safe_dump(data)) == {"learningRate": 0.0005}  # the bug
    assert goyaml.load(goyaml.dump(data)) == data


AMBIGUOUS = [text for text, value in GO_READS if not isinstance(value, str)] + [
    *YAML12_CORE_NON_STRINGS,
    "2001-12-14",  # a date for YAML 1.1
    "1:20",  # a base-60 integer for YAML 1.1
    "",
]


@pytest.mark.parametrize("text", AMBIGUOUS)
def test_dump_quotes_strings_that_any_reader_would_type(text: str) -> None:
    data = {"value": text, text: "key", "list": [text]}
    out = goyaml.dump(data)
    assert goyaml.load(out) == data, out
    assert yaml.safe_load(out) == data, out  # YAML 1.1
    assert not goyaml.reads_as_string(text)


def test_dump_keeps_plain_strings_and_non_strings_as_they_are() -> None:
    data = {"name": "llm", "ratio": 0.25, "count": 3, "enabled": True, "none": None, "big": 1e17}
    out = goyaml.dump(data)
    assert "name: llm\n" in out and "'" not in out
    assert goyaml.load(out) == data
    assert yaml.safe_load(out) == data


def test_validate_cli_reads_manifests_as_kubectl_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = Path(__file__).resolve().parents[3] / "examples/tiny-pretrain.yaml"
    text = example.read_text()
    assert 'learningRate: "3e-3"' in text
    quoted, unquoted = tmp_path / "quoted.yaml", tmp_path / "unquoted.yaml"
    quoted.write_text(text)
    unquoted.write_text(text.replace('learningRate: "3e-3"', "learningRate: 3e-3"))
    assert main(["validate", str(quoted)]) == 0
    capsys.readouterr()
    assert main(["validate", str(unquoted)]) == 1
    err = capsys.readouterr().err
    assert "spec.training.hyperparameters.learningRate: Input should be a valid string" in err
