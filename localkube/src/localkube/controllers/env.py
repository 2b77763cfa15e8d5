"""How a container's environment and command line are built (pure functions).

Kubernetes builds a container's environment from `envFrom` then `env` (later wins),
resolving `valueFrom` against ConfigMaps, Secrets and the Pod's own fields, and expands
`$(VAR)` references in env values (against variables defined before them) and in
`command`/`args` (against the whole environment); `$$` escapes a literal `$`, and an
unresolvable reference stays as written. The kubelet here runs containers as local
processes, so paths under a volume's `mountPath` are also rewritten onto the local
directory that stands for the volume.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EnvError",
    "build_env",
    "expand",
    "field_ref_value",
    "map_paths",
]

JSON = dict[str, Any]


class EnvError(Exception):
    """A referenced ConfigMap/Secret key is missing (CreateContainerConfigError)."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: `$$` -> `$`, unknown references kept verbatim."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end == -1:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            if name in env:
                out.append(env[name])
            else:
                out.append(text[i : end + 1])
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']*)'\]$")


def field_ref_value(pod: Mapping[str, Any], field_path: str, pod_ip: str) -> str:
    """Downward API fieldRef: metadata.*, spec.nodeName/serviceAccountName, status.*IP."""
    meta = pod.get("metadata") or {}
    m = _SUBSCRIPT.match(field_path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName", ""),
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
    }
    if field_path in simple:
        return str(simple[field_path] or "")
    if field_path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(field_path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    raise EnvError(f"unsupported fieldRef fieldPath {field_path!r}")


@dataclass
class Sources:
    """What `valueFrom`/`envFrom` may read: ConfigMaps and Secrets of the pod's namespace."""

    configmaps: Mapping[str, JSON]
    secrets: Mapping[str, JSON]


def _secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (secret.get("data") or {}).items():
        try:
            out[k] = base64.b64decode(v).decode("utf-8", errors="replace")
        except (ValueError, TypeError):
            out[k] = ""
    for k, v in (secret.get("stringData") or {}).items():
        out[k] = str(v)
    return out


def _lookup(kind: str, name: str, key: str, optional: bool, src: Sources) -> str | None:
    if kind == "configMap":
        cm = src.configmaps.get(name)
        data = None if cm is None else {**(cm.get("data") or {})}
    else:
        sec = src.secrets.get(name)
        data = None if sec is None else _secret_data(sec)
    if data is None:
        if optional:
            return None
        raise EnvError(f'{kind} "{name}" not found')
    if key not in data:
        if optional:
            return None
        raise EnvError(f"couldn't find key {key} in {kind} {name}")
    return str(data[key])


def _resource_value(container: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    resource = str(ref.get("resource", ""))
    section, _, name = resource.partition(".")
    value = ((container.get("resources") or {}).get(section) or {}).get(name)
    return "" if value is None else str(value)


def build_env(
    container: Mapping[str, Any],
    pod: Mapping[str, Any],
    pod_ip: str,
    src: Sources,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The container's environment on top of `base` (host env, service links)."""
    env: dict[str, str] = dict(base or {})
    for ef in container.get("envFrom") or []:
        prefix = str(ef.get("prefix") or "")
        for kind in ("configMap", "secret"):
            ref = ef.get(f"{kind}Ref")
            if not ref:
                continue
            name, optional = ref.get("name", ""), bool(ref.get("optional"))
            obj = (src.configmaps if kind == "configMap" else src.secrets).get(name)
            if obj is None:
                if optional:
                    continue
                raise EnvError(f'{kind} "{name}" not found')
            data = dict(obj.get("data") or {}) if kind == "configMap" else _secret_data(obj)
            for k, v in data.items():
                env[prefix + k] = str(v)
    for item in container.get("env") or []:
        name = str(item.get("name", ""))
        if "value" in item or "valueFrom" not in item:
            env[name] = expand(str(item.get("value") or ""), env)
            continue
        vf = item["valueFrom"] or {}
        value: str | None
        if "fieldRef" in vf:
            value = field_ref_value(pod, str(vf["fieldRef"].get("fieldPath", "")), pod_ip)
        elif "configMapKeyRef" in vf:
            r = vf["configMapKeyRef"]
            value = _lookup(
                "configMap", r.get("name", ""), r.get("key", ""), bool(r.get("optional")), src
            )
        elif "secretKeyRef" in vf:
            r = vf["secretKeyRef"]
            value = _lookup(
                "secret", r.get("name", ""), r.get("key", ""), bool(r.get("optional")), src
            )
        elif "resourceFieldRef" in vf:
            value = _resource_value(container, vf["resourceFieldRef"])
        else:
            value = ""
        if value is not None:
            env[name] = value
    return env


def map_paths(value: str, mounts: Mapping[str, str]) -> str:
    """Rewrite references to container paths (mountPath -> local dir) in one pass.

    A mount path counts as a whole path prefix: at the start of the value or after `=`,
    `:`, `,` or whitespace (`--out=/data/x`, `PATH=/a:/data/bin`), followed by `/`, a
    separator or the end. The longest mount path wins (`/data/sub` before `/data`).

    localkube runs containers on the host, so a path *below* a mount path that already
    exists on the host (an interpreter in a venv under /tmp, a source tree) is the host's
    and is left alone; anything else under a mount path is mapped onto the volume.
    """
    paths = sorted((p.rstrip("/") for p in mounts if p.rstrip("/")), key=len, reverse=True)
    if not paths:
        return value
    local = {p.rstrip("/"): v.rstrip("/") for p, v in mounts.items()}
    pattern = re.compile(
        r"(?:^|(?<=[=:,\s]))(" + "|".join(re.escape(p) for p in paths) + r")(?=/|$|[:,\s])"
        r"(/[^:,\s]*)?"
    )

    def replace(m: re.Match[str]) -> str:
        mount, rest = m.group(1), m.group(2) or ""
        if rest.strip("/") and os.path.exists(mount + rest):
            return mount + rest
        return local[mount] + rest

    return pattern.sub(replace, value)
