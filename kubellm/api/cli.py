"""`kubellm crd` (print the CRD) and `kubellm validate` (check manifests offline)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _crd(args: argparse.Namespace) -> int:
    if args.reference:
        from kubellm.api.reference import reference_markdown

        print(reference_markdown())
        return 0
    from kubellm.api.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return 0


def _validate(args: argparse.Namespace) -> int:
    import yaml

    from kubellm.api import goyaml
    from kubellm.api.resource import InvalidSpec, parse_llm

    failed = 0
    for path in args.files:
        try:  # read as kubectl does: an unquoted 5e-4 is a number, as the cluster sees it
            docs = [d for d in goyaml.load_all(Path(path).read_text()) if d]
        except (OSError, ValueError, yaml.YAMLError) as exc:
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            failed += 1
            continue
        for doc in docs:
            obj: dict[str, Any] = doc
            name = (obj.get("metadata") or {}).get("name", "?")
            try:
                parse_llm(obj)
            except InvalidSpec as exc:
                failed += 1
                for line in exc.errors:
                    print(f"{path}: llm/{name}: {line}", file=sys.stderr)
            else:
                print(f"{path}: llm/{name}: valid")
    return 1 if failed else 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "crd",
        help="print the LLM CustomResourceDefinition (YAML)",
        description="Print the LLM CRD generated from the API models.",
    )
    p.add_argument(
        "--reference", action="store_true", help="print the field reference as Markdown instead"
    )
    p.set_defaults(handler=_crd)
    v = subparsers.add_parser(
        "validate",
        help="validate LLM manifests offline",
        description="Validate LLM manifests against the API models; exit 1 on any error.",
    )
    v.add_argument("files", nargs="+", help="YAML files with LLM objects")
    v.set_defaults(handler=_validate)
