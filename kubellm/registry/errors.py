"""Exceptions of the registry layer: callers catch by category.

``RegistryUnavailable`` means "try again later" (the operator maps it to a temporary
error); ``ModelNotFound`` means the name, version or alias does not exist;
``TrackingUriRefused`` means the operator's configuration does not let it reach that
tracking server at all; ``DiskFull`` means the local disk, not the registry, failed.
Every message is redacted: no userinfo of a URI survives into one.
"""

from __future__ import annotations

__all__ = [
    "DiskFull",
    "ModelNotFound",
    "RegistryError",
    "RegistryUnavailable",
    "TrackingUriRefused",
]


class RegistryError(Exception):
    """Base class for every registry failure."""


class RegistryUnavailable(RegistryError):
    """The tracking server cannot be reached or answered with a server error."""


class ModelNotFound(RegistryError):
    """The registered model, version or alias does not exist."""


class TrackingUriRefused(RegistryError):
    """The tracking URI is not one the configuration allows (never contacted)."""


class DiskFull(RegistryError):
    """Writing a download (or a cache) failed: no space left on the local device."""
