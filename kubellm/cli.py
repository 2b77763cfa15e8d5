"""The one `kubellm` command.

Each package owns its subcommands: it exposes ``register(subparsers)`` in its own
``cli`` module, which adds a parser and sets ``handler`` (a callable taking the parsed
namespace and returning an exit code). This module only wires them together, so the
entry point never imports torch, mlflow or kopf before a subcommand needs them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

__all__ = ["build_parser", "main"]

# Modules that register subcommands, in the order `--help` lists them.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "kubellm.api.cli",  # crd
    "kubellm.operator.cli",  # operator
    "kubellm.training.cli",  # train
    "kubellm.serving.cli",  # serve, fetch-model
    "kubellm.loadtests.cli",  # loadtest
    "kubellm.gateway.cli",  # gateway
    "kubellm.devtools",  # localkube (from the kubellm-localkube distribution)
    "kubellm.demo",  # demo
)

# Subcommands on a serving pod's start-up path, and the module that registers each: a cold
# start waits on `kubellm serve`, which then imports no other subcommand's module (all of
# them cost ~0.3 s of CPU, the API models most).
STARTUP_COMMANDS: dict[str, str] = {
    "serve": "kubellm.serving.cli",
    "fetch-model": "kubellm.serving.cli",
}

Handler = Callable[[argparse.Namespace], int]


def _version() -> str:
    try:
        return version("kubellm")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0+unknown"


def build_parser(modules: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the subcommands of ``modules`` (default: every module's)."""
    parser = argparse.ArgumentParser(
        prog="kubellm",
        description="Fine-tune, load-test and serve LLMs on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"kubellm {_version()}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES if modules is None else modules:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    startup = STARTUP_COMMANDS.get(given[0]) if given else None
    parser = build_parser((startup,) if startup else None)
    args = parser.parse_args(given)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
