"""The LLM resource's identity: group, version, kind and names, in one place."""

from __future__ import annotations

__all__ = ["API_VERSION", "GROUP", "KIND", "PLURAL", "SHORT_NAMES", "SINGULAR", "VERSION"]

GROUP = "kubellm.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "LLM"
PLURAL = "llms"
SINGULAR = "llm"
SHORT_NAMES = ("llm",)
