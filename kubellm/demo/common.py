"""What every part of `kubellm demo` shares: where the chart and example are, and kubectl.

Every step talks to the cluster through `kubectl`, and every failure is a `DemoFailure`
whose message is the one sentence the user reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "CHART",
    "EXAMPLE",
    "NAMESPACE",
    "REPO",
    "SHARE",
    "DemoFailure",
    "kubectl",
    "share_root",
]

REPO = Path(__file__).resolve().parents[2]
#: an installed wheel's copy of the repository's charts/kubellm and examples (setup.py)
SHARE = Path(__file__).resolve().parents[1] / "_share"
NAMESPACE = "kubellm-system"
CHART = Path("charts") / "kubellm"
EXAMPLE = Path("examples") / "tiny-pretrain.yaml"


class DemoFailure(RuntimeError):
    """Ends the demo: its message is the one sentence the user reads."""


def share_root() -> Path:
    """Where `charts/kubellm` and `examples/` are: an installed wheel's copy, else the checkout.

    Both have the repository's layout, so the dataset paths the examples name (relative to
    the repository root) resolve against the same folder.
    """
    return SHARE if (SHARE / CHART).is_dir() else REPO


def kubectl(cluster: Any, *args: str, stdin: str | None = None, check: bool = True) -> str:
    result = cluster.kubectl(*args, input=stdin, timeout=120)
    if check and result.returncode != 0:
        raise DemoFailure(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return str(result.stdout)
