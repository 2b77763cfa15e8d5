"""Run a real control plane on loopback: etcd, kube-apiserver, controller manager, scheduler.

The binaries come from `tools/realkube/build.sh` (built from the Kubernetes Go modules into
`~/.cache/kubellm/realkube/<version>/bin`). This module only starts them with the flags a
small single-node cluster needs, waits until each answers, and stops them in reverse order.
Every process gets PR_SET_PDEATHSIG so that it dies with the process that started it, even
when that one is SIGKILLed.

Deliberate choices:
- `--authorization-mode=Node,RBAC` and the apiserver's default admission plugins, so that the
  chart's RBAC and the restricted defaults of a real cluster are enforced.
- The controller manager runs every default controller except `horizontalpodautoscaling`
  (localkube's HPA controller reads CPU and serving metrics from the node's processes; there
  is no metrics API here) and `nodeipam` (no pod networks to hand out). Controllers use their
  own service accounts (`--use-service-account-credentials`), as on kubeadm clusters.
- etcd runs without fsync: its data lives for one test session.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from localkube.realkube.kubeconfig import write_kubeconfig
from localkube.realkube.pki import Credentials, Pki, generate

__all__ = ["ControlPlane", "ControlPlaneError", "binaries_dir", "free_port"]

log = logging.getLogger(__name__)

VERSION = "v1.37.2"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
PR_SET_PDEATHSIG = 1


#: who called what, with which answer (tests read it to prove what the operator did)
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
"""


class ControlPlaneError(RuntimeError):
    """A component is missing, exited, or did not turn healthy in time."""


def binaries_dir(version: str = VERSION) -> Path:
    """Where `tools/realkube/build.sh` puts the binaries (override: KUBELLM_REALKUBE_BIN)."""
    override = os.environ.get("KUBELLM_REALKUBE_BIN")
    if override:
        return Path(override)
    cache = os.environ.get("KUBELLM_REALKUBE_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kubellm" / "realkube"
    )
    return Path(cache) / version / "bin"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the process that started it goes away."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setpgrp()


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler in `workdir`."""

    workdir: Path
    service_cidr: str = "127.96.0.0/16"
    node_name: str = "localkube-node"
    host: str = "127.0.0.1"
    bin_dir: Path = field(default_factory=binaries_dir)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    #: the components' environment (None: this process's); a guard's tag goes here
    env: dict[str, str] | None = None
    apiserver_port: int = 0
    pki: Pki | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.apiserver_port}"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def check_binaries(self) -> None:
        missing = [c for c in COMPONENTS if not (self.bin_dir / c).exists()]
        if missing:
            raise ControlPlaneError(
                f"missing {', '.join(missing)} in {self.bin_dir}: run `make realkube` "
                "(builds them from the Kubernetes Go modules; needs Go)"
            )

    def version(self) -> str:
        out = subprocess.run(
            [str(self.bin_dir / "kube-apiserver"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip().replace("Kubernetes ", "")

    # -- start ---------------------------------------------------------------------------
    def start(self, *, timeout: float = 120.0) -> None:
        self.check_binaries()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        first_service_ip = _first_host(self.service_cidr)
        pki = self.pki = generate(
            self.workdir / "pki",
            node_name=self.node_name,
            apiserver_hosts=(
                self.host,
                first_service_ip,
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
        )
        self.apiserver_port = self.apiserver_port or free_port(self.host)
        etcd_port, etcd_peer = free_port(self.host), free_port(self.host)
        etcd_url = f"http://{self.host}:{etcd_port}"
        deadline = time.monotonic() + timeout
        self._spawn(
            "etcd",
            [
                "--name=realkube",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://{self.host}:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://{self.host}:{etcd_peer}",
                f"--initial-cluster=realkube=http://{self.host}:{etcd_peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait("etcd", f"{etcd_url}/health", deadline)
        self._spawn("kube-apiserver", self._apiserver_args(pki, etcd_url))
        self._wait("kube-apiserver", f"{self.url}/readyz", deadline, client=pki.admin)
        write_kubeconfig(self.admin_kubeconfig, self.url, pki.ca_cert, pki.admin, "admin")
        for name, creds in (
            ("controller-manager", pki.controller_manager),
            ("scheduler", pki.scheduler),
        ):
            write_kubeconfig(
                self.workdir / f"{name}.kubeconfig", self.url, pki.ca_cert, creds, name
            )
        self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
                f"--authentication-kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
                f"--authorization-kubeconfig={self.workdir / 'controller-manager.kubeconfig'}",
                "--controllers=*,-horizontalpodautoscaling,-nodeipam,-bootstrapsigner,-tokencleaner",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                f"--service-cluster-ip-range={self.service_cidr}",
                "--leader-elect=false",
                f"--bind-address={self.host}",
                f"--secure-port={free_port(self.host)}",
                "--concurrent-deployment-syncs=5",
                "--concurrent-job-syncs=5",
                "--v=1",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                f"--kubeconfig={self.workdir / 'scheduler.kubeconfig'}",
                f"--authentication-kubeconfig={self.workdir / 'scheduler.kubeconfig'}",
                f"--authorization-kubeconfig={self.workdir / 'scheduler.kubeconfig'}",
                "--leader-elect=false",
                f"--bind-address={self.host}",
                f"--secure-port={free_port(self.host)}",
                "--v=1",
            ],
        )
        time.sleep(0.5)
        self._check_alive()
        log.info("real control plane %s up at %s", self.version(), self.url)

    def _apiserver_args(self, pki: Pki, etcd_url: str) -> list[str]:
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.workdir / 'logs' / 'audit.log'}",
            "--audit-log-format=json",
            "--audit-log-mode=batch",
            "--audit-log-batch-max-wait=1s",
            f"--etcd-servers={etcd_url}",
            f"--bind-address={self.host}",
            f"--advertise-address={self.host}",
            f"--secure-port={self.apiserver_port}",
            f"--tls-cert-file={pki.apiserver.cert}",
            f"--tls-private-key-file={pki.apiserver.key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--kubelet-client-certificate={pki.kubelet_client.cert}",
            f"--kubelet-client-key={pki.kubelet_client.key}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-cluster-ip-range={self.service_cidr}",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]

    def _spawn(self, name: str, args: Sequence[str]) -> None:
        logfile = open(self.workdir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - the child's
        try:
            self.procs[name] = subprocess.Popen(
                [str(self.bin_dir / name), *args],
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=self.env,
                preexec_fn=_die_with_parent,
            )
        finally:
            logfile.close()

    def _wait(
        self, name: str, url: str, deadline: float, client: Credentials | None = None
    ) -> None:
        context: ssl.SSLContext | None = None
        if client is not None and self.pki is not None:
            context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
            context.load_cert_chain(str(client.cert), str(client.key))
        while time.monotonic() < deadline:
            self._check_alive()
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(url, timeout=2, context=context) as resp,
            ):
                if resp.status == 200:
                    return
            time.sleep(0.3)
        raise ControlPlaneError(
            f"{name} did not answer {url} in time; see {self.workdir / 'logs' / (name + '.log')}"
        )

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = _tail(self.workdir / "logs" / f"{name}.log")
                raise ControlPlaneError(f"{name} exited with {proc.returncode}:\n{tail}")

    # -- stop ----------------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> None:
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self.procs.clear()


def _first_host(cidr: str) -> str:
    import ipaddress

    return str(next(ipaddress.ip_network(cidr).hosts()))


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
