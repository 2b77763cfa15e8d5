"""`kubellm localkube` and `kubellm demo` without the localkube distribution: one clear line."""

from __future__ import annotations

import sys

import pytest

from kubellm.cli import main


@pytest.fixture
def no_localkube(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "localkube" or m.startswith("localkube.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "localkube", None)  # import localkube -> not found


@pytest.mark.usefixtures("no_localkube")
@pytest.mark.parametrize(
    "argv", [["localkube", "up", "--workdir", "/tmp/x"], ["localkube"], ["demo", "--once"]]
)
def test_commands_needing_localkube_say_how_to_install_it(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1
    assert f"kubellm {argv[0]} needs localkube" in err[0]
    assert "pip install kubellm-localkube" in err[0] and "pip install ./localkube" in err[0]


def test_localkube_subcommand_delegates_when_installed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["localkube", "up", "--help"])
    assert exit_.value.code == 0
    assert "--control-plane" in capsys.readouterr().out
