"""The one MLflow client of kubellm.

Every other package talks to the model registry through this class so that the mapping of
MLflow's exceptions onto ours (unavailable vs. not found) lives in one place, and so that
tests can replace it with an in-memory double that has the same methods.
"""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubellm.redaction import redact
from kubellm.registry.access import TrackingAccess
from kubellm.registry.breaker import CircuitBreaker
from kubellm.registry.errors import DiskFull, ModelNotFound, RegistryError, RegistryUnavailable

__all__ = ["ModelVersionInfo", "Registry", "parse_model_uri"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w.-]+))$")


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None]:
    """Split ``models:/name/3`` or ``models:/name@alias`` into (name, version, alias)."""
    m = _MODEL_URI.match(uri)
    if not m:
        raise ValueError(
            f"not a registry model URI: {uri!r} "
            "(expected models:/NAME/VERSION or models:/NAME@ALIAS)"
        )
    return m.group("name"), m.group("version"), m.group("alias")


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    run_id: str | None
    source: str | None
    aliases: tuple[str, ...]
    tags: dict[str, str]
    status: str


def _is_not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "") or ""
    text = str(exc)
    return (
        "RESOURCE_DOES_NOT_EXIST" in code
        or "not found" in text.lower()
        or ("RESOURCE_DOES_NOT_EXIST" in text)
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_disk_full(exc: BaseException) -> bool:
    """No space left on the local device, wherever in the chain (MLflow wraps it)."""
    return any(
        (isinstance(e, OSError) and e.errno == errno.ENOSPC)
        or "No space left on device" in str(e)
        or "[Errno 28]" in str(e)
        for e in _chain(exc)
    )


def _is_unreachable(exc: BaseException) -> bool:
    """MLflow's REST client wraps connection failures, timeouts and exhausted retries in a
    plain MlflowException ("API request to ... failed with [timeout] exception ..."),
    raised from (or while handling) the ``requests`` error: those mean down."""
    import requests

    for e in _chain(exc):
        if isinstance(e, requests.ConnectionError | requests.Timeout | ConnectionError):
            return True
        if isinstance(e, TimeoutError):
            return True
    text = str(exc)
    return ("failed with exception" in text or "failed with timeout exception" in text) and any(
        marker in text
        for marker in ("Max retries exceeded", "Connection", "Timeout", "timed out", "Errno")
    )


@contextmanager
def _mapped_errors(what: str) -> Iterator[None]:
    """Translate MLflow's and the network's exceptions into ours, with redacted messages."""
    from mlflow.exceptions import MlflowException

    what = redact(what)
    try:
        yield
    except RegistryError:
        raise
    except Exception as exc:
        if _is_disk_full(exc):
            raise DiskFull(f"{what}: no space left on the local disk (disk full)") from exc
        message = redact(exc.message if isinstance(exc, MlflowException) else str(exc))
        if _is_unreachable(exc):
            raise RegistryUnavailable(f"{what}: registry unreachable: {message}") from exc
        if isinstance(exc, MlflowException):
            if _is_not_found(exc):
                raise ModelNotFound(f"{what}: {message}") from exc
            if "INVALID_PARAMETER_VALUE" in (exc.error_code or "") and "alias" in message.lower():
                raise ModelNotFound(f"{what}: {message}") from exc
            raise RegistryError(f"{what}: {message}") from exc
        if isinstance(exc, OSError):
            raise RegistryUnavailable(f"{what}: registry unreachable: {message}") from exc
        name = type(exc).__name__
        if "Connection" in name or "Retry" in name or "Timeout" in name:
            raise RegistryUnavailable(f"{what}: registry unreachable: {message}") from exc
        raise


class Registry:
    """A thin, typed facade over ``mlflow.MlflowClient`` for the model registry.

    ``access``, when given, is checked before the client is even built: a refused tracking
    URI raises `TrackingUriRefused` and is never contacted. ``breaker``, when given, guards
    every call (one breaker per tracking server). Workloads use neither; the operator both.
    """

    def __init__(
        self,
        tracking_uri: str,
        registry_uri: str | None = None,
        *,
        access: TrackingAccess | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if access is not None:
            access.check(tracking_uri)
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.breaker = breaker
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)

    @property
    def mlflow(self) -> Any:
        """The underlying ``MlflowClient``, for the rare call this facade does not cover."""
        return self._client

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        breaker = self.breaker
        if breaker is not None:
            breaker.before_call(redact(what))
        try:
            with _mapped_errors(what):
                result = fn()
        except RegistryUnavailable:
            if breaker is not None:
                breaker.record_failure()
            raise
        except BaseException:
            if breaker is not None:
                breaker.record_success()  # the server answered (or the fault is ours)
            raise
        if breaker is not None:
            breaker.record_success()
        return result

    def ping(self) -> None:
        """Raise ``RegistryUnavailable`` unless the registry answers."""
        self._call("ping", lambda: self._client.search_registered_models(max_results=1))

    def ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        def create() -> None:
            try:
                self._client.create_registered_model(name)
            except MlflowException as exc:
                if "RESOURCE_ALREADY_EXISTS" not in (exc.error_code or ""):
                    raise

        self._call(f"create registered model {name}", create)

    def resolve_alias(self, name: str, alias: str) -> str | None:
        """The version the alias points at, or None when the alias (or model) does not exist."""
        try:
            mv = self._call(
                f"resolve {name}@{alias}",
                lambda: self._client.get_model_version_by_alias(name, alias),
            )
        except ModelNotFound:
            return None
        return str(mv.version)

    def get_version(self, name: str, version: str) -> ModelVersionInfo:
        mv = self._call(
            f"get {name}/{version}", lambda: self._client.get_model_version(name, str(version))
        )
        return ModelVersionInfo(
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id,
            source=mv.source,
            aliases=tuple(getattr(mv, "aliases", []) or []),
            tags=dict(mv.tags or {}),
            status=str(mv.status),
        )

    def latest_version(self, name: str) -> str | None:
        versions = self._call(
            f"search versions of {name}",
            lambda: self._client.search_model_versions(f"name='{name}'"),
        )
        numbers = [int(v.version) for v in versions]
        return str(max(numbers)) if numbers else None

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call(
            f"set {name}@{alias} -> {version}",
            lambda: self._client.set_registered_model_alias(name, alias, str(version)),
        )

    def delete_alias(self, name: str, alias: str) -> None:
        try:
            self._call(
                f"delete {name}@{alias}",
                lambda: self._client.delete_registered_model_alias(name, alias),
            )
        except ModelNotFound:
            pass

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        """Set tags on a version; values are redacted (no URI userinfo lands in a tag)."""

        def set_all() -> None:
            for key, value in tags.items():
                self._client.set_model_version_tag(name, str(version), key, redact(str(value)))

        self._call(f"tag {name}/{version}", set_all)

    def get_version_tags(self, name: str, version: str) -> dict[str, str]:
        return self.get_version(name, version).tags

    def resolve_uri(self, uri: str) -> tuple[str, str]:
        """Resolve a ``models:/`` URI to (name, version)."""
        name, version, alias = parse_model_uri(uri)
        if version is not None:
            self.get_version(name, version)
            return name, version
        assert alias is not None
        resolved = self.resolve_alias(name, alias)
        if resolved is None:
            raise ModelNotFound(f"alias {alias!r} of registered model {name!r} does not exist")
        return name, resolved

    def ensure_webhook(self, url: str, secret: str, events: list[str], name: str) -> bool:
        """Create the registry webhook that points at ``url`` unless one exists already;
        True when it was created."""

        def ensure() -> bool:
            for hook in self._client.list_webhooks():
                if getattr(hook, "url", None) == url:
                    return False
            hooks: list[Any] = list(events)  # MLflow types them as literals
            self._client.create_webhook(name=name, url=url, events=hooks, secret=secret)
            return True

        return self._call(f"register webhook {name}", ensure)

    def download_model(self, uri: str, dst: Path) -> Path:
        """Download the artifacts of a registry model URI into ``dst``; return the model dir.

        For models logged with the transformers flavor, the loadable weights live in the
        ``model/`` (or ``components/``) subfolder; the returned path is the folder that holds
        ``config.json`` so it can be passed to ``from_pretrained`` directly.
        """
        import mlflow.artifacts

        name, version = self.resolve_uri(uri)
        dst.mkdir(parents=True, exist_ok=True)
        local = self._call(
            f"download {uri}",
            lambda: mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}",
                dst_path=str(dst),
                tracking_uri=self.tracking_uri,
            ),
        )
        return find_model_dir(Path(local))


def find_model_dir(root: Path) -> Path:
    """The folder under ``root`` that holds a transformers ``config.json``."""
    if (root / "config.json").exists():
        return root
    candidates = sorted(root.rglob("config.json"), key=lambda p: len(p.parts))
    if not candidates:
        raise ModelNotFound(f"no config.json under {root}: not a transformers model")
    return candidates[0].parent
