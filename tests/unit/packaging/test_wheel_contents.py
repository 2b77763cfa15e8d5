"""The product's wheel carries the product, and localkube's wheel carries localkube.

`pip install kubellm` (and the image) must hold the operator, train, serve, loadtest and
the gateway, plus the chart and examples `kubellm demo` installs; localkube, the local
Kubernetes and test fixtures, is the separate distribution in localkube/. Each wheel is
built from a copy of the sources it needs (the checkout's own build/ folder may be in use
by another build), without build isolation: a few seconds each.
"""

from __future__ import annotations

import ast
import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")


def _build(tmp: Path, sources: list[str], project: str = ".") -> zipfile.ZipFile:
    src = tmp / "src"
    for rel in sources:
        if (REPO / rel).is_dir():
            shutil.copytree(REPO / rel, src / rel, ignore=IGNORE)
        else:
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    out = tmp / "wheel"
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run(
        [*pip, "-w", str(out), str(src / project)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def _entry_points(wheel: zipfile.ZipFile) -> str:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    return wheel.read(name).decode()


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    sources = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "kubellm"]
    return _build(tmp_path_factory.mktemp("product"), [*sources, "charts/kubellm", "examples"])


def test_product_wheel_holds_no_localkube_and_no_test_helpers(product: zipfile.ZipFile) -> None:
    names = product.namelist()
    modules = [n for n in names if n.endswith(".py")]
    assert "kubellm/operator/cli.py" in modules and "kubellm/demo/__init__.py" in modules
    assert all(n.startswith("kubellm/") for n in modules), modules
    assert not [n for n in names if "localkube" in n or n.startswith("kubellm/testing/")]
    requires = _metadata(product).get_all("Requires-Dist") or []
    assert not [r for r in requires if "localkube" in r]
    assert "kubellm = kubellm.cli:main" in _entry_points(product)


def test_product_wheel_carries_the_chart_and_the_examples_the_demo_installs(
    product: zipfile.ZipFile,
) -> None:
    names = set(product.namelist())
    share = "kubellm/_share/"
    chart = sorted(
        p.relative_to(REPO).as_posix()
        for p in (REPO / "charts" / "kubellm").rglob("*")
        if p.is_file()
    )
    assert chart and {share + rel for rel in chart} <= names
    example = yaml.safe_load(product.read(share + "examples/tiny-pretrain.yaml"))
    assert share + example["spec"]["training"]["dataset"]["uri"] in names
    assert example["metadata"]["name"]


def test_localkube_wheel_holds_localkube_its_fixtures_and_pod_site(
    tmp_path: Path,
) -> None:
    wheel = _build(tmp_path, ["localkube/pyproject.toml", "localkube/src"], "localkube")
    names = wheel.namelist()
    for module in (
        "localkube/cli.py",
        "localkube/apiserver/__init__.py",
        "localkube/podsite/sitecustomize.py",
        "localkube/podsite/localkube_http_faults.py",
        "localkube/testing/localkube.py",
        "localkube/testing/tiny_model.py",
        "localkube/py.typed",
    ):
        assert module in names
    assert not [n for n in names if n.startswith("kubellm/")]
    meta = _metadata(wheel)
    assert meta["Name"] == "kubellm-localkube"
    assert "kubellm" in (meta.get_all("Requires-Dist") or [])
    assert "localkube = localkube.cli:main" in _entry_points(wheel)


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in tree.body:  # module level only: function bodies import lazily
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_no_product_module_imports_localkube_at_module_level() -> None:
    offenders = [
        p.relative_to(REPO).as_posix()
        for p in (REPO / "kubellm").rglob("*.py")
        if "localkube" in _top_level_imports(p)
    ]
    assert offenders == []
