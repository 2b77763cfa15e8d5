"""The MLflow model registry, seen through one client: aliases, versions, tags, downloads."""

from kubellm.registry.access import TrackingAccess
from kubellm.registry.breaker import CircuitBreaker, CircuitOpen
from kubellm.registry.client import ModelVersionInfo, Registry, find_model_dir, parse_model_uri
from kubellm.registry.errors import (
    DiskFull,
    ModelNotFound,
    RegistryError,
    RegistryUnavailable,
    TrackingUriRefused,
)
from kubellm.registry.http import HttpPolicy

__all__ = [
    "CircuitBreaker",
    "CircuitOpen",
    "DiskFull",
    "HttpPolicy",
    "ModelNotFound",
    "ModelVersionInfo",
    "Registry",
    "RegistryError",
    "RegistryUnavailable",
    "TrackingAccess",
    "TrackingUriRefused",
    "find_model_dir",
    "parse_model_uri",
]
