"""Imported by every Python container a localkube kubelet starts (PYTHONPATH): cluster DNS,
and the hook of the `http-errors` pod fault.

Cluster DNS answers `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc` and `<svc>.<ns>.svc.cluster.local` (and
Indexed-Job pod hosts) from the records file the kubelet keeps (KUBELLM_CLUSTER_DNS), with
the pod's namespace as the first search domain, as a pod's resolv.conf would; every other
name goes to the system resolver unchanged. Kept dependency-free and cheap: it runs at the
start of every container process.

HTTP faults: when the container has a fault file (KUBELLM_HTTP_FAULTS) and imports
`uvicorn.config`, the app uvicorn loads is wrapped by `localkube_http_faults` (see that
module and `localkube.controllers.httpfaults`); a process that never imports uvicorn pays
for one entry on `sys.meta_path`.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from importlib.machinery import PathFinder, SourceFileLoader
from typing import Any

_RECORDS_FILE = os.environ.get("KUBELLM_CLUSTER_DNS", "")
_NAMESPACE = os.environ.get("KUBELLM_POD_NAMESPACE", "default")
_DOMAIN = "cluster.local"
_state: dict[str, Any] = {"mtime": None, "records": {}}


def _records() -> dict[str, list[str]]:
    try:
        mtime = os.stat(_RECORDS_FILE).st_mtime_ns
    except OSError:
        return {}
    if mtime != _state["mtime"]:
        try:
            with open(_RECORDS_FILE) as f:
                _state["records"] = json.load(f)
            _state["mtime"] = mtime
        except (OSError, ValueError):
            return dict(_state["records"])
    return dict(_state["records"])


def cluster_lookup(host: str) -> str | None:
    """The first address of a cluster name, or None for names the cluster does not know."""
    name = host.rstrip(".").lower()
    if not name or name.replace(".", "").isdigit() or ":" in name:
        return None
    recs = _records()
    if not recs:
        return None
    candidates = [name] if name.endswith("." + _DOMAIN) else []
    candidates += [
        f"{name}.{_NAMESPACE}.svc.{_DOMAIN}",
        f"{name}.svc.{_DOMAIN}",
        f"{name}.{_DOMAIN}",
    ]
    for candidate in candidates:
        addresses = recs.get(candidate)
        if addresses:
            return str(addresses[0])
    return None


if _RECORDS_FILE:
    _getaddrinfo = socket.getaddrinfo
    _gethostbyname = socket.gethostbyname

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode("idna")
        if isinstance(host, str):
            host = cluster_lookup(host) or host
        return _getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host: str) -> str:
        return cluster_lookup(host) or _gethostbyname(host)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.gethostbyname = gethostbyname


class _UvicornFaultHook:
    """A meta-path finder that patches `uvicorn.config` as it is first imported."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "uvicorn.config":
            return None
        spec = PathFinder.find_spec(fullname, path)
        loader = None if spec is None else spec.loader
        if not isinstance(loader, SourceFileLoader):
            return spec
        exec_module = loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            from localkube_http_faults import patch_uvicorn_config

            patch_uvicorn_config(module)

        setattr(loader, "exec_module", exec_and_patch)  # noqa: B010 - this instance only
        return spec


if os.environ.get("KUBELLM_HTTP_FAULTS"):
    sys.meta_path.insert(0, _UvicornFaultHook())  # type: ignore[arg-type]
