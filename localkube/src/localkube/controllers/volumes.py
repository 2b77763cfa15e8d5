"""Pod volumes as local directories, and where each container's mounts land.

There are no mount namespaces for a local process, so each volume becomes a directory
(emptyDir per pod, configMap/secret files written from the objects, a
persistentVolumeClaim a directory per claim that outlives its pods, hostPath the path
itself) and the kubelet rewrites the container's references to each `mountPath` onto it.

A Secret's files are created with mode 0600 in a 0700 directory: without a mount namespace
they lie in the host's filesystem, where other users of the machine must not read them
(a cluster's default 0644 is safe only inside the container).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from localkube.controllers.env import EnvError

__all__ = ["container_mounts", "materialise_volumes"]

JSON = dict[str, Any]


def _write_file(path: Path, content: bytes, mode: int | None) -> None:
    if mode is None:
        path.write_bytes(content)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)  # an existing file keeps its old mode otherwise
    with os.fdopen(fd, "wb") as f:
        f.write(content)


def _write_items(
    target: Path, data: Mapping[str, bytes], items: list[JSON] | None, *, private: bool = False
) -> None:
    target.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
    if private:
        target.chmod(0o700)
    wanted = {i.get("key", ""): i.get("path", i.get("key", "")) for i in items or []}
    for key, content in data.items():
        if items and key not in wanted:
            continue
        rel = str(wanted.get(key) or key)
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if private else 0o777)
        _write_file(path, content, 0o600 if private else None)
    if items:
        missing = set(wanted) - set(data)
        if missing:
            raise EnvError(f"configmap/secret keys not found: {sorted(missing)}")


def materialise_volumes(
    pod: Mapping[str, Any],
    pod_dir: Path,
    claims_dir: Path,
    configmaps: Mapping[str, JSON],
    secrets: Mapping[str, JSON],
) -> dict[str, str]:
    """Create a directory per volume; return volume name -> local path."""
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    out: dict[str, str] = {}
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        name = vol.get("name", "")
        local = pod_dir / "volumes" / name
        if "configMap" in vol:
            src = vol["configMap"] or {}
            cm = configmaps.get(src.get("name", ""))
            if cm is None and not src.get("optional"):
                raise EnvError(f'configmap "{src.get("name")}" not found')
            data = {k: str(v).encode() for k, v in ((cm or {}).get("data") or {}).items()}
            for k, v in ((cm or {}).get("binaryData") or {}).items():
                data[k] = base64.b64decode(v)
            _write_items(local, data, src.get("items"))
        elif "secret" in vol:
            src = vol["secret"] or {}
            sec = secrets.get(src.get("secretName", ""))
            if sec is None and not src.get("optional"):
                raise EnvError(f'secret "{src.get("secretName")}" not found')
            data = {k: base64.b64decode(v) for k, v in ((sec or {}).get("data") or {}).items()}
            _write_items(local, data, src.get("items"), private=True)
        elif "persistentVolumeClaim" in vol:
            claim = (vol["persistentVolumeClaim"] or {}).get("claimName", name)
            local = claims_dir / ns / claim
            local.mkdir(parents=True, exist_ok=True)
        elif "hostPath" in vol:
            local = Path((vol["hostPath"] or {}).get("path", "/"))
            if (vol["hostPath"] or {}).get("type") in ("DirectoryOrCreate",):
                local.mkdir(parents=True, exist_ok=True)
        else:  # emptyDir, and anything we do not model, is an empty per-pod directory
            local.mkdir(parents=True, exist_ok=True)
        out[name] = str(local)
    return out


def container_mounts(
    container: Mapping[str, Any], volume_dirs: Mapping[str, str]
) -> dict[str, str]:
    """mountPath -> local path for one container (subPath honoured)."""
    out: dict[str, str] = {}
    for m in container.get("volumeMounts") or []:
        base = volume_dirs.get(m.get("name", ""))
        if base is None:
            continue
        sub = m.get("subPath") or ""
        local = os.path.join(base, sub) if sub else base
        if sub and not os.path.exists(local):
            os.makedirs(local, exist_ok=True)
        out[str(m.get("mountPath", ""))] = local
    return out
