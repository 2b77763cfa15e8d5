"""The MLflow model registry, seen through one client: aliases, versions, tags, downloads."""

from kubellm.registry.client import ModelVersionInfo, Registry, find_model_dir, parse_model_uri
from kubellm.registry.errors import ModelNotFound, RegistryError, RegistryUnavailable

__all__ = [
    "ModelNotFound",
    "ModelVersionInfo",
    "Registry",
    "RegistryError",
    "RegistryUnavailable",
    "find_model_dir",
    "parse_model_uri",
]
