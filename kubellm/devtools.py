"""The commands that need localkube, kubellm's development tool, which the product does not ship.

`kubellm localkube ...` and `kubellm demo` run a local Kubernetes; it lives in its own
distribution (`kubellm-localkube`, the repository's `localkube/` folder). kubellm imports
it only here and in the demo, lazily, and says how to install it when it is missing.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any

__all__ = [
    "INSTALL_HINT",
    "LocalkubeMissing",
    "localkube_installed",
    "missing_message",
    "register",
    "require_localkube",
]

INSTALL_HINT = "pip install kubellm-localkube (in a kubellm checkout: pip install ./localkube)"


class LocalkubeMissing(RuntimeError):
    """localkube is not installed: its message is the one line the user reads."""


def missing_message(command: str) -> str:
    return f"kubellm {command} needs localkube, which is not installed: {INSTALL_HINT}"


def localkube_installed() -> bool:
    """Whether localkube can be imported (a checkout's bare `localkube/` folder does not count)."""
    try:
        return importlib.util.find_spec("localkube.cli") is not None
    except ModuleNotFoundError:  # no `localkube` at all
        return False


def require_localkube(command: str) -> None:
    """Raise :class:`LocalkubeMissing` unless localkube is installed."""
    if not localkube_installed():
        raise LocalkubeMissing(missing_message(command))


def _missing(_: argparse.Namespace) -> int:
    print(missing_message("localkube"), file=sys.stderr)
    return 2


def register(subparsers: Any) -> None:
    """`kubellm localkube`: localkube's own parser when installed, else one that says so."""
    if not localkube_installed():
        parser = subparsers.add_parser(
            "localkube", help="a local Kubernetes (needs kubellm-localkube)", add_help=False
        )
        parser.add_argument("args", nargs=argparse.REMAINDER)
        parser.set_defaults(handler=_missing)
        return
    from localkube.cli import register as register_localkube

    register_localkube(subparsers)
