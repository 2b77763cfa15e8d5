"""The chart and the examples travel in the wheel, for `kubellm demo` from an installed kubellm.

Everything else is in pyproject.toml. A built wheel (not an editable install, which reads the
checkout) gets the repository's `charts/kubellm` and `examples` as package data under
`kubellm/_share/`, in the same layout as the checkout: the demo finds them (and the dataset
paths the examples name, relative to the repository root) in either place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHARED = ("charts/kubellm", "examples")


class BuildWithShare(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout's copies
            return
        share = Path(self.build_lib) / "kubellm" / "_share"
        shutil.rmtree(share, ignore_errors=True)  # no stale file from an earlier build
        for rel in SHARED:
            shutil.copytree(
                ROOT / rel, share / rel, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )


setup(cmdclass={"build_py": BuildWithShare})
