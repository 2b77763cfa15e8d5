"""The known differences of docs/emulator.md, and the comparison that consults them.

docs/emulator.md carries one fenced block opened with "```yaml known-differences": a list
of entries `{id, check, keys, summary}`. `check` names the differential check that observes
the difference (a test here) and `keys` the observation keys (fnmatch patterns) on which
localkube and kube-apiserver may differ because of it; `check: null` marks a difference
that no check observes (documented for users only). A difference is allowed only when an
entry lists it, and an entry whose difference no longer occurs fails too, so the document
stays exactly as true as the emulator.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DOC = Path(__file__).resolve().parents[3] / "docs" / "emulator.md"
_BLOCK = re.compile(r"^```yaml known-differences\n(.*?)^```", re.MULTILINE | re.DOTALL)
_MISSING = "<absent>"


@dataclass(frozen=True)
class Known:
    id: str
    check: str | None
    keys: tuple[str, ...]
    summary: str

    def covers(self, check: str, key: str) -> bool:
        return self.check == check and any(_pattern(p).fullmatch(key) for p in self.keys)


def _pattern(key: str) -> re.Pattern[str]:
    """A key pattern: literal text, where only `*` stands for anything (brackets are text)."""
    return re.compile(".*".join(re.escape(part) for part in key.split("*")))


def load(doc: Path = DOC) -> list[Known]:
    """The entries of the known-differences block; a malformed block is an error."""
    match = _BLOCK.search(doc.read_text())
    if match is None:
        raise ValueError(f"{doc}: no ```yaml known-differences block")
    entries = yaml.safe_load(match.group(1))
    if not isinstance(entries, list):
        raise ValueError(f"{doc}: the known-differences block must be a list")
    out: list[Known] = []
    for e in entries:
        if set(e) != {"id", "check", "keys", "summary"}:
            raise ValueError(f"{doc}: entry {e.get('id')!r} needs exactly id, check, keys, summary")
        if e["check"] is None and e["keys"]:
            raise ValueError(f"{doc}: entry {e['id']!r} has keys but no check")
        out.append(
            Known(e["id"], e["check"], tuple(e["keys"] or ()), " ".join(e["summary"].split()))
        )
    ids = [k.id for k in out]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{doc}: duplicate ids {duplicates}")
    return out


def differences(local: dict[str, Any], real: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ (a key missing on one side reads as `<absent>`)."""
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(local) | set(real)):
        a, b = local.get(key, _MISSING), real.get(key, _MISSING)
        if a != b:
            out[key] = (a, b)
    return out


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) < 600 else text[:600] + "..."


def verdict(
    check: str, local: dict[str, Any], real: dict[str, Any], known: list[Known]
) -> list[str]:
    """Problems: differences no entry allows, and entries of `check` that no longer hold."""
    diffs = differences(local, real)
    problems = []
    for key, (a, b) in diffs.items():
        if not any(k.covers(check, key) for k in known):
            problems.append(
                f"[{check}] {key}: undocumented difference\n"
                f"    localkube: {_show(a)}\n    real:      {_show(b)}"
            )
    for k in known:
        if k.check == check and not any(k.covers(check, key) for key in diffs):
            problems.append(
                f"[{check}] known difference {k.id!r} no longer occurs: remove it from "
                "docs/emulator.md"
            )
    return problems


def assert_same(
    check: str, local: dict[str, Any], real: dict[str, Any], known: list[Known]
) -> None:
    problems = verdict(check, local, real, known)
    assert not problems, "\n".join(problems)
