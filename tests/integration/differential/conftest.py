"""Two clusters for this package, localkube's emulator and a real kube-apiserver, side by side.

They live for this package's tests only (package scope), so a full `make test` run does not
keep a real control plane busy while the other suites run.

Each differential test runs the same observation on both (in two threads), then compares the
normalised results with `known.assert_same`, which lets through only the differences that
docs/emulator.md lists. The real control plane needs the binaries `make realkube` builds;
without them the real side is skipped with the reason, or fails when
`KUBELLM_REQUIRE_REAL_E2E=1` (CI), so a missing build never passes silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from localkube.realkube.controlplane import COMPONENTS, binaries_dir
from localkube.testing.localkube import local_cluster

from .known import Known, assert_same, load
from .manifests import GADGET_CRD, WIDGET_CRD
from .probing import Side, lines

Observation = dict[str, Any]


def _missing_binaries() -> str:
    where = binaries_dir()
    missing = [c for c in COMPONENTS if not (where / c).exists()]
    if not missing:
        return ""
    return (
        f"real control plane: {', '.join(missing)} missing in {where} "
        "(run `make realkube`; it needs Go): the differential check against kube-apiserver "
        "did not run"
    )


@pytest.fixture(scope="package")
def known() -> list[Known]:
    return load()


@pytest.fixture(scope="package")
def real_side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Side]:
    missing = _missing_binaries()
    if missing:
        if os.environ.get("KUBELLM_REQUIRE_REAL_E2E") == "1":
            pytest.fail(f"KUBELLM_REQUIRE_REAL_E2E=1 but {missing}")
        pytest.skip(missing)
    with local_cluster(tmp_path_factory.mktemp("diff-real"), control_plane="real") as cluster:
        print(cluster.description)
        yield Side("real", cluster)


@pytest.fixture(scope="package")
def localkube_side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Side]:
    with local_cluster(tmp_path_factory.mktemp("diff-localkube")) as cluster:
        yield Side("localkube", cluster)


@pytest.fixture(scope="package")
def sides(real_side: Side, localkube_side: Side) -> tuple[Side, Side]:
    """(localkube, real); the real side first, so a skip starts no cluster at all."""
    return localkube_side, real_side


class Pair:
    """Both sides and the namespace (same name on both) a test works in."""

    def __init__(self, sides: tuple[Side, Side], known: list[Known], ns: str) -> None:
        self.local, self.real = sides
        self.known = known
        self.ns = ns

    def observe(self, fn: Callable[[Side], Observation]) -> tuple[Observation, Observation]:
        """`fn` on both sides at once; (localkube's observation, real's)."""
        with ThreadPoolExecutor(2) as pool:
            local, real = pool.map(fn, (self.local, self.real))
        return local, real

    def check(self, name: str, fn: Callable[[Side], Observation]) -> None:
        """Observe both sides and fail on any difference docs/emulator.md does not list."""
        local, real = self.observe(fn)
        assert_same(name, local, real, self.known)


@pytest.fixture
def pair(
    request: pytest.FixtureRequest, sides: tuple[Side, Side], known: list[Known]
) -> Iterator[Pair]:
    """A fresh namespace named after the test, on both clusters."""
    name = "d-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))
    name = name[:50].strip("-")
    for side in sides:
        side.namespace(name)
    yield Pair(sides, known, name)
    for side in sides:
        side.drop_namespace(name)


@pytest.fixture(scope="package")
def crds(sides: tuple[Side, Side]) -> dict[str, Observation]:
    """widgets and gadgets CRDs applied with kubectl (validation on) on both clusters.

    Returns what kubectl printed on each side (checklist item 3), for test_crd to compare.
    """

    def install(side: Side) -> Observation:
        out: Observation = {}
        for name, manifest in (("widgets", WIDGET_CRD), ("gadgets", GADGET_CRD)):
            applied = side.kubectl("apply", "-f", "-", input=manifest)
            assert applied.returncode == 0, f"{side.name}: {applied.stderr}"
            waited = side.kubectl(
                "wait", "--for=condition=Established", f"crd/{name}.example.com", "--timeout=30s"
            )
            out[f"{name}.apply"] = lines(applied.stdout)
            out[f"{name}.wait"] = (waited.returncode, lines(waited.stdout))
        return out

    with ThreadPoolExecutor(2) as pool:
        local, real = pool.map(install, sides)
    return {"localkube": local, "real": real}
