"""Fixtures for the load-test gate: fake OpenAI servers on loopback and a gate runner."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.loadtests.fake_openai_server import FakeBehaviour, running_server


@dataclass
class GateRun:
    code: int
    doc: dict[str, Any]
    stdout: str
    out: Path

    @property
    def figures(self) -> dict[str, Any]:
        return self.doc["figures"]


@pytest.fixture
def fake_server() -> Iterator[Callable[..., tuple[str, FakeBehaviour]]]:
    """Start fake OpenAI servers (``fake_server(latency_s=0.05)``); all stop after the test."""
    from contextlib import ExitStack

    with ExitStack() as stack:

        def start(**behaviour: Any) -> tuple[str, FakeBehaviour]:
            return stack.enter_context(running_server(FakeBehaviour(**behaviour)))

        yield start


@pytest.fixture
def gate(tmp_path, capsys, monkeypatch) -> Callable[..., GateRun]:
    """Run ``kubellm loadtest`` in this process (Locust itself runs as subprocesses)."""
    from kubellm.cli import main

    monkeypatch.setenv("KUBELLM_TERMINATION_LOG", str(tmp_path / "termination-log"))
    counter = iter(range(100))

    def run(target: str, *flags: str, duration: str = "3s", users: str = "4") -> GateRun:
        out = tmp_path / f"run{next(counter)}"
        argv = [
            "loadtest",
            "--target",
            target,
            "--users",
            users,
            "--spawn-rate",
            "100",
            "--duration",
            duration,
            "--out",
            str(out),
            "--progress-every",
            "1s",
            "--connect-timeout",
            "1s",
            *flags,
        ]
        capsys.readouterr()
        code = main(argv)
        stdout = capsys.readouterr().out
        doc = json.loads((out / "verdict.json").read_text())
        return GateRun(code, doc, stdout, out)

    return run
