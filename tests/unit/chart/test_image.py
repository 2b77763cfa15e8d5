"""The Dockerfile agrees with the package and the chart (it cannot be built on this machine)."""

from __future__ import annotations

import re
import shlex
import tomllib

import yaml
from packaging.requirements import Requirement

from tests.unit.chart.conftest import CHART, REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _args() -> dict[str, str]:
    found = {}
    for line in INSTRUCTIONS:
        if line.startswith("ARG ") and "=" in line:
            name, _, value = line[4:].partition("=")
            found[name.strip()] = value.strip()
    return found


def test_cpu_base_by_default_and_cuda_by_build_argument() -> None:
    assert _args()["BASE"] == "python:3.11-slim"
    assert INSTRUCTIONS[1] == "FROM ${BASE}"
    assert "--build-arg BASE=nvidia/cuda:" in DOCKERFILE
    assert "--build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu" in DOCKERFILE


def test_pinned_torch_satisfies_the_package_requirement() -> None:
    torch = next(Requirement(r) for r in PYPROJECT["project"]["dependencies"] if "torch" in r)
    assert torch.name == "torch"
    assert _args()["TORCH_VERSION"] in torch.specifier


def test_torch_is_installed_before_the_package() -> None:
    runs = [i for i, line in enumerate(INSTRUCTIONS) if line.startswith("RUN ")]
    torch = next(i for i in runs if '"torch==$TORCH_VERSION"' in INSTRUCTIONS[i])
    package = next(i for i in runs if "pip install ." in INSTRUCTIONS[i])
    assert '--index-url "$TORCH_INDEX"' in INSTRUCTIONS[torch]
    assert torch < package


def test_entrypoint_is_the_kubellm_console_script() -> None:
    assert 'ENTRYPOINT ["kubellm"]' in INSTRUCTIONS
    assert "kubellm" in PYPROJECT["project"]["scripts"]


def test_image_user_is_the_uid_the_chart_runs_as() -> None:
    (user,) = [line.split()[1] for line in INSTRUCTIONS if line.startswith("USER ")]
    assert user == "10001:10001"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["operator"]["securityContext"]["runAsUser"] == 10001
    assert values["operator"]["podSecurityContext"]["runAsGroup"] == 10001
    (useradd,) = [line for line in INSTRUCTIONS if "useradd" in line]
    words = shlex.split(useradd)
    assert words[words.index("--uid") + 1] == "10001"


def test_dockerignore_sends_only_the_package_to_the_build() -> None:
    lines = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {line for line in lines if line.startswith("!")} == {
        "!pyproject.toml",
        "!README.md",
        "!kubellm/",
    }
    copied = [
        src for line in INSTRUCTIONS if line.startswith("COPY ") for src in line.split()[1:-1]
    ]
    assert sorted(copied) == ["README.md", "kubellm", "pyproject.toml"]
