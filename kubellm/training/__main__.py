"""``python -m kubellm.training ARGS`` is ``kubellm train ARGS`` without the other commands.

The whole ``kubellm`` command imports every subcommand's parser (pydantic, kopf wiring);
a GPU node image or a bare benchmark machine may carry only the training stack, so this
entry point depends on nothing beyond what training itself needs.
"""

import argparse
import logging
import sys

from kubellm.training.cli import register

parser = argparse.ArgumentParser(prog="python -m kubellm.training")
register(parser.add_subparsers(dest="command"))
args = parser.parse_args(["train", *sys.argv[1:]])
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
sys.exit(args.handler(args))
