"""A small kopf operator for the API-server tests: handles Widgets (example.com/v1)."""

from __future__ import annotations

from typing import Any

import kopf


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.networking.error_backoffs = [1, 1, 2]
    settings.posting.level = 20  # INFO events


@kopf.on.create("example.com", "v1", "widgets")
def create_widget(spec: Any, name: str, logger: Any, body: Any, **_: Any) -> dict[str, Any]:
    kopf.info(body, reason="Created", message=f"widget {name} of size {spec.get('size')}")
    logger.info(f"created widget {name}")
    return {"size": spec.get("size")}


@kopf.on.update("example.com", "v1", "widgets")
def update_widget(name: str, logger: Any, **_: Any) -> None:
    logger.info(f"updated widget {name}")


@kopf.on.delete("example.com", "v1", "widgets")
def delete_widget(name: str, logger: Any, **_: Any) -> None:
    logger.info(f"deleted widget {name}")
