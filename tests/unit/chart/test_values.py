"""values.yaml is the chart's manual: every value documented, and the schema guards typos."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.unit.chart.conftest import CHART, RELEASE, run_helm

VALUES = CHART / "values.yaml"
KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][A-Za-z0-9]*):")


def _undocumented() -> list[str]:
    """Keys with no comment right above them and no `# --` comment above an ancestor.

    A `# --` comment documents its key's whole value, so the fields of a block such as
    `resources` or `securityContext` need none of their own.
    """
    lines = VALUES.read_text().splitlines()
    missing = []
    ancestors: list[tuple[int, str, bool]] = []  # (indent, key, covers its subtree)
    for number, line in enumerate(lines):
        match = KEY.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        start = number
        while start > 0 and lines[start - 1].strip().startswith("#"):
            start -= 1
        comment = [lines[i].strip() for i in range(start, number)]
        covered = any(covers for _, _, covers in ancestors)
        if not comment and not covered:
            missing.append(".".join([*(k for _, k, _ in ancestors), match["key"]]))
        covers = covered or (bool(comment) and comment[0].startswith("# --"))
        ancestors.append((indent, match["key"], covers))
    return missing


def test_every_value_is_documented() -> None:
    assert _undocumented() == []


def test_every_value_is_in_the_schema_and_the_defaults_pass_it() -> None:
    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(VALUES.read_text()), schema)


def test_misspelt_value_is_refused_by_the_schema(tmp_path: Path) -> None:
    result = run_helm("template", RELEASE, str(CHART), values={"replicas": 2}, tmp=tmp_path)
    assert result.returncode != 0
    assert "additional properties 'replicas' not allowed" in result.stderr


def test_command_with_a_shell_string_is_refused(tmp_path: Path) -> None:
    result = run_helm(
        "template", RELEASE, str(CHART), values={"image": {"command": "kubellm operator"}},
        tmp=tmp_path,
    )  # fmt: skip
    assert result.returncode != 0
