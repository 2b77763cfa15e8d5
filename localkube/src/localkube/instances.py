"""Several localkube instances on one machine: address blocks, state files, leftovers.

Each instance gives pods and Services loopback addresses. If two instances (a demo and a
test run, or two users) handed out the same ones, the second could not bind its pods' ports
or its Services' cluster IPs, and would retry forever. So each instance takes a *slot*:
slot n owns the pod block `127.(64+n).0.0/16` and the service block `127.(96+n).0.0/16`
(n < 32; slot 0 is what a single localkube always used).

A slot is claimed by binding a listening socket on the pod block's last address
(`127.(64+n).255.255`, never a pod IP) and port :data:`CLAIM_PORT`. The kernel makes that
atomic across processes and users, and frees it when the last process holding the socket
exits, even on SIGKILL, with no stale files to clean. localkube hands the socket to every
pod and to its watchdog (see :mod:`.lifetime`), so a slot stays taken while anything of its
instance may still run. Before claiming, the listening sockets of the machine
(`/proc/net/tcp`) are checked for any address inside the blocks, which also keeps clear of
processes of older localkube versions that never claimed anything.

Each running instance records an :class:`InstanceState` in its workdir (`localkube.json`)
and in a per-user registry (`$TMPDIR/kubellm-localkube-$UID/instances/`), which
`kubellm localkube status` lists. A state file whose process is gone marks a dead instance:
:func:`take_over_workdir` stops whatever it left behind (by the tag in its state) before a
new instance uses the same workdir.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localkube import lifetime
from localkube.apiserver.auth import write_private

__all__ = [
    "CLAIM_PORT",
    "SLOTS",
    "STATE_FILE",
    "AddressBlocks",
    "Claim",
    "InstanceRunning",
    "InstanceState",
    "NoFreeBlocks",
    "claim_blocks",
    "listening_addresses",
    "read_state",
    "register",
    "registry_dir",
    "running_instances",
    "take_over_workdir",
    "unregister",
]

STATE_FILE = "localkube.json"
SLOTS = 32
#: below Linux's ephemeral port range (32768-60999), so no outgoing connection takes it
CLAIM_PORT = 31999


class NoFreeBlocks(RuntimeError):
    """Every slot is taken by a live instance (or by something listening inside it)."""


class InstanceRunning(RuntimeError):
    """A live instance already uses this workdir."""

    def __init__(self, state: InstanceState) -> None:
        super().__init__(
            f"localkube is already running in {state.workdir} (pid {state.pid}, {state.url}); "
            f"stop it with `kubellm localkube down --workdir {state.workdir}`"
        )
        self.state = state


@dataclass(frozen=True)
class AddressBlocks:
    """The pod and service CIDRs of one slot."""

    slot: int
    pods: str
    services: str

    @classmethod
    def for_slot(cls, slot: int) -> AddressBlocks:
        if not 0 <= slot < SLOTS:
            raise ValueError(f"slot {slot} is outside 0..{SLOTS - 1}")
        return cls(slot, f"127.{64 + slot}.0.0/16", f"127.{96 + slot}.0.0/16")

    @property
    def marker(self) -> str:
        """The address whose :data:`CLAIM_PORT` holds the claim (never handed to a pod)."""
        return str(ipaddress.IPv4Network(self.pods).broadcast_address)

    def contains(self, address: str) -> bool:
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.IPv4Network(n) for n in (self.pods, self.services))


@dataclass
class Claim:
    """Address blocks held by a listening socket (None where loopback aliases do not work)."""

    blocks: AddressBlocks
    sock: socket.socket | None = None

    def fileno(self) -> int | None:
        return None if self.sock is None else self.sock.fileno()

    def release(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def listening_addresses(path: Path = Path("/proc/net/tcp")) -> list[str]:
    """IPv4 addresses with a listening TCP socket on this machine (Linux; else [])."""
    try:
        lines = path.read_text().splitlines()[1:]
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A":  # 0A: LISTEN
            continue
        hex_ip = fields[1].split(":")[0]
        with contextlib.suppress(ValueError):
            out.append(str(ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(hex_ip), "little"))))
    return out


def claim_blocks(slots: Iterable[int] = range(SLOTS), *, aliases: bool = True) -> Claim:
    """Claim the first free slot: nothing listens inside it and its marker binds."""
    if not aliases:  # pods share 127.0.0.1 and services use free ports: nothing to claim
        return Claim(AddressBlocks.for_slot(0))
    busy = listening_addresses()
    tried = []
    for slot in slots:
        blocks = AddressBlocks.for_slot(slot)
        if any(blocks.contains(a) for a in busy):
            tried.append(f"{slot}: in use")
            continue
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((blocks.marker, CLAIM_PORT))
            sock.listen(1)
        except OSError as exc:
            sock.close()
            tried.append(f"{slot}: {exc.strerror}")
            continue
        sock.set_inheritable(False)
        return Claim(blocks, sock)
    raise NoFreeBlocks(
        f"no free localkube address block (slots tried: {', '.join(tried)}); stop an instance "
        f"(`kubellm localkube status` lists them) or free port {CLAIM_PORT}"
    )


@dataclass
class InstanceState:
    """What a running instance records: enough to find, report on and stop it."""

    pid: int
    url: str
    kubeconfig: str
    workdir: str
    tag: str = ""
    pod_cidr: str = ""
    service_cidr: str = ""
    control_plane: str = "localkube"
    admin_url: str = ""
    version: str = ""
    started_at: float = field(default_factory=time.time)
    #: the process's start time in clock ticks, to tell a reused pid apart
    process_start: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            head, *rest = key.split("_")
            out[head + "".join(w.upper() if w == "cidr" else w.title() for w in rest)] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstanceState:
        names = {k: k for k in cls.__dataclass_fields__}
        for key in list(names):
            head, *rest = key.split("_")
            names[key] = head + "".join(w.upper() if w == "cidr" else w.title() for w in rest)
        kwargs = {k: data[j] for k, j in names.items() if j in data}
        return cls(**kwargs)

    def alive(self) -> bool:
        """True while the recorded process runs (and is the one that wrote this state)."""
        return lifetime.is_running(self.pid, self.process_start)


def registry_dir() -> Path:
    """The per-user directory of running instances (override: KUBELLM_LOCALKUBE_RUN_DIR)."""
    override = os.environ.get("KUBELLM_LOCALKUBE_RUN_DIR")
    base = Path(override) if override else Path(tempfile.gettempdir()) / _user_dir_name()
    path = base / "instances"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _user_dir_name() -> str:
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return f"kubellm-localkube-{uid}"


def read_state(workdir: Path) -> InstanceState | None:
    try:
        return InstanceState.from_json(json.loads((Path(workdir) / STATE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def register(state: InstanceState) -> None:
    """Record `state` in its workdir and in the per-user registry."""
    text = json.dumps(state.to_json(), indent=1)
    write_private(Path(state.workdir) / STATE_FILE, text)
    write_private(registry_dir() / f"{state.pid}.json", text)


def unregister(state: InstanceState) -> None:
    with contextlib.suppress(OSError):
        (registry_dir() / f"{state.pid}.json").unlink()
    current = read_state(Path(state.workdir))
    if current is not None and current.pid == state.pid:
        with contextlib.suppress(OSError):
            (Path(state.workdir) / STATE_FILE).unlink()


def running_instances() -> list[InstanceState]:
    """Live instances of this user, oldest first; entries of dead ones are removed."""
    out = []
    for path in sorted(registry_dir().glob("*.json")):
        try:
            state = InstanceState.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if state.alive():
            out.append(state)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return sorted(out, key=lambda s: s.started_at)


def take_over_workdir(workdir: Path, *, grace: float = 2.0) -> str | None:
    """Make `workdir` free for a new instance.

    Raises :class:`InstanceRunning` if a live instance uses it. If its state names a dead
    instance, stops every process that instance left behind and returns a sentence for the
    user; returns None when the workdir holds no state.
    """
    state = read_state(workdir)
    if state is None:
        return None
    if state.alive():
        raise InstanceRunning(state)
    stopped = lifetime.sweep(state.tag, grace) if state.tag else []
    with contextlib.suppress(OSError):
        (Path(workdir) / STATE_FILE).unlink()
    with contextlib.suppress(OSError):
        (registry_dir() / f"{state.pid}.json").unlink()
    left = f"stopped {len(stopped)} leftover process(es)" if stopped else "nothing was left running"
    return f"the localkube that ran in {workdir} (pid {state.pid}) died without stopping; {left}"
