"""docs/emulator.md's known-differences list is well formed and names only real checks.

Runs without any cluster, so a broken list fails even where the real control plane is not
built.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .known import DOC, Known, load, verdict

HERE = Path(__file__).parent


def _checks() -> set[str]:
    """The observation names the differential tests compare under."""
    names: set[str] = set()
    for test in HERE.glob("test_*.py"):
        names.update(re.findall(r'pair\.check\(\s*"([^"]+)"', test.read_text()))
    return names


def test_every_known_difference_names_an_existing_check() -> None:
    entries = load()
    assert entries, f"{DOC} lists no known differences"
    checks = _checks()
    assert "discovery" in checks and "watch" in checks
    unknown = {k.id: k.check for k in entries if k.check is not None and k.check not in checks}
    assert not unknown, f"entries naming no check: {unknown}"
    assert all(k.summary for k in entries)


def test_only_listed_keys_may_differ_and_stale_entries_fail() -> None:
    known = [Known("x", "c", ("a*",), "why")]
    assert verdict("c", {"a1": 1, "b": 2}, {"a1": 9, "b": 2}, known) == []
    problems = verdict("c", {"b": 1}, {"b": 2}, known)
    assert len(problems) == 2
    assert "b: undocumented difference" in problems[0]
    assert "'x' no longer occurs" in problems[1]
    assert verdict("other", {"a1": 1}, {"a1": 1}, known) == []


def test_malformed_list_is_refused(tmp_path: Path) -> None:
    doc = tmp_path / "emulator.md"
    doc.write_text(
        "```yaml known-differences\n- {id: a, check: null, keys: [k], summary: s}\n```\n"
    )
    with pytest.raises(ValueError, match="has keys but no check"):
        load(doc)
    doc.write_text("no block here\n")
    with pytest.raises(ValueError, match="no ```yaml known-differences block"):
        load(doc)
