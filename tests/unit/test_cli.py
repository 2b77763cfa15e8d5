"""The `kubellm` command wires every package's subcommands, and only those that exist."""

from __future__ import annotations

import argparse
import importlib

import pytest

from kubellm import cli

COMMANDS = {"crd", "operator", "train", "serve", "fetch-model", "loadtest", "gateway"}


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def test_every_subcommand_is_registered() -> None:
    assert _subcommands(cli.build_parser()) >= COMMANDS | {"localkube", "demo"}


def test_a_missing_subcommand_module_is_an_error_not_a_placeholder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "SUBCOMMAND_MODULES", (*cli.SUBCOMMAND_MODULES, "kubellm.nope"))
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser()


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_serve_registers_only_its_own_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """A serving pod's start-up does not pay for importing every other subcommand."""
    imported: list[str] = []
    real = importlib.import_module

    def recording(name: str) -> object:
        imported.append(name)
        return real(name)

    monkeypatch.setattr(importlib, "import_module", recording)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", "--help"])
    assert exit_info.value.code == 0
    assert imported == ["kubellm.serving.cli"]
    for command, module in cli.STARTUP_COMMANDS.items():
        assert command in _subcommands(cli.build_parser((module,)))
