"""Fixtures for localkube integration tests: one local cluster (a separate process) per session,
and a fresh namespace per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localkube.testing.localkube import Cluster, localkube  # noqa: F401  (session fixture)

from .controllers_support import namespace


@pytest.fixture
def ns(localkube: Cluster) -> Iterator[str]:  # noqa: F811
    yield from namespace(localkube)
