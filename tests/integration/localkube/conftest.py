"""Fixtures for localkube integration tests: one local cluster (a separate process) per session."""

from __future__ import annotations

from kubellm.testing.localkube import localkube  # noqa: F401  (session fixture)
