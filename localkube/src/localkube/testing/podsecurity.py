"""A checker of the Kubernetes Pod Security Standards, "restricted" profile (with baseline).

The rules of https://kubernetes.io/docs/concepts/security/pod-security-standards/ as of
Kubernetes 1.25+ (policy version "latest"), applied to a pod spec the way the
PodSecurity admission controller does, so tests can check rendered manifests (the
operator's children, the Helm chart's pods) without a cluster. Pure: a spec in, a list of
violations out (empty when the pod is admitted under ``restricted``).

Not covered: Windows-only fields beyond ``hostProcess`` (the restricted profile skips most
checks for ``os.name: windows`` pods; kubellm runs none).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["restricted_violations", "workload_pod_spec"]

JSON = Mapping[str, Any]

#: capabilities baseline lets a container add (restricted then allows only NET_BIND_SERVICE)
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_LATEST = SELINUX_TYPES | {"container_engine_t"}


def _containers(pod: JSON) -> Iterator[tuple[str, JSON]]:
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for c in pod.get(kind) or []:
            yield f"{kind}[{c.get('name', '?')}]", c


def _sc(obj: JSON) -> JSON:
    return obj.get("securityContext") or {}


def _baseline(pod: JSON) -> Iterator[str]:
    psc = _sc(pod)
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            yield f"{field} must not be true"
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        yield "securityContext.windowsOptions.hostProcess must not be true"
    for where, opts in (("securityContext", psc), *((w, _sc(c)) for w, c in _containers(pod))):
        se = opts.get("seLinuxOptions") or {}
        if se.get("type", "") not in SELINUX_TYPES_LATEST:
            yield f"{where}.seLinuxOptions.type {se.get('type')!r} is not allowed"
        if se.get("user") or se.get("role"):
            yield f"{where}.seLinuxOptions user/role must not be set"
        if (opts.get("seccompProfile") or {}).get("type") == "Unconfined":
            yield f"{where}.seccompProfile.type must not be Unconfined"
        apparmor = (opts.get("appArmorProfile") or {}).get("type")
        if apparmor not in (None, "RuntimeDefault", "Localhost"):
            yield f"{where}.appArmorProfile.type must be RuntimeDefault or Localhost"
    for sysctl in psc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"securityContext.sysctls {sysctl.get('name')!r} is not a safe sysctl"
    for vol in pod.get("volumes") or []:
        if "hostPath" in vol:
            yield f"volume {vol.get('name')!r}: hostPath volumes are not allowed"
    for where, c in _containers(pod):
        sc = _sc(c)
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            yield f"{where}: hostProcess must not be true"
        if sc.get("privileged"):
            yield f"{where}: privileged must not be true"
        added = set((sc.get("capabilities") or {}).get("add") or [])
        if added - BASELINE_CAPABILITIES:
            yield f"{where}: capabilities {sorted(added - BASELINE_CAPABILITIES)} may not be added"
        if sc.get("procMount") not in (None, "Default"):
            yield f"{where}: procMount must be Default"
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                yield f"{where}: hostPort {port['hostPort']} is not allowed"


def _restricted(pod: JSON) -> Iterator[str]:
    psc = _sc(pod)
    for vol in pod.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            yield f"volume {vol.get('name')!r}: type {sorted(kinds)} is not allowed"
    pod_non_root = psc.get("runAsNonRoot")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if psc.get("runAsUser") == 0:
        yield "securityContext.runAsUser must not be 0"
    if pod_non_root is False:
        yield "securityContext.runAsNonRoot must not be false"
    if pod_seccomp is not None and pod_seccomp not in ("RuntimeDefault", "Localhost"):
        yield "securityContext.seccompProfile.type must be RuntimeDefault or Localhost"
    for where, c in _containers(pod):
        sc = _sc(c)
        if sc.get("allowPrivilegeEscalation") is not False:
            yield f"{where}: allowPrivilegeEscalation must be false"
        non_root = sc.get("runAsNonRoot", pod_non_root)
        if non_root is not True:
            yield f"{where}: runAsNonRoot must be true (in the container or the pod)"
        if sc.get("runAsUser") == 0:
            yield f"{where}: runAsUser must not be 0"
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            yield f"{where}: seccompProfile.type must be RuntimeDefault or Localhost"
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            yield f"{where}: capabilities must drop ALL"
        added = set(caps.get("add") or [])
        if added - {"NET_BIND_SERVICE"}:
            yield f"{where}: only NET_BIND_SERVICE may be added, not {sorted(added)}"


def restricted_violations(pod: JSON) -> list[str]:
    """Every rule of the restricted profile (baseline included) that ``pod`` breaks."""
    return [*_baseline(pod), *_restricted(pod)]


def workload_pod_spec(manifest: JSON) -> JSON | None:
    """The pod spec of a Pod, Deployment, Job, StatefulSet, DaemonSet or CronJob manifest."""
    kind = manifest.get("kind")
    spec = manifest.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec")
    if kind in ("Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"):
        return (spec.get("template") or {}).get("spec")
    return None
