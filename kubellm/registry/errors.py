"""Exceptions of the registry layer: callers catch by category.

``RegistryUnavailable`` means "try again later" (the operator maps it to a temporary
error); ``ModelNotFound`` means the name, version or alias does not exist.
"""

from __future__ import annotations

__all__ = ["ModelNotFound", "RegistryError", "RegistryUnavailable"]


class RegistryError(Exception):
    """Base class for every registry failure."""


class RegistryUnavailable(RegistryError):
    """The tracking server cannot be reached or answered with a server error."""


class ModelNotFound(RegistryError):
    """The registered model, version or alias does not exist."""
