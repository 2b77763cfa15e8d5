"""Processes that die with the process that started them, however it dies.

A cluster or a demo starts processes (the API server, MLflow, every pod's container, and
whatever those start in turn). A graceful stop stops them all, but SIGKILL, the OOM killer
or a closed terminal gives no chance to clean up, and the orphans keep their loopback
addresses and ports: the next cluster then cannot bind them. Two mechanisms close that gap:

* :func:`die_with_parent` is a `preexec_fn` that asks the kernel (`PR_SET_PDEATHSIG`) to
  signal the child when its parent dies. It covers direct children only, and the kernel
  fires it when the parent *thread* that forked the child exits: spawn from a thread that
  lives as long as the process (the main thread, or the event loop's thread).
* A :class:`Guard` tags every process started under it through the environment
  (`KUBELLM_OWNERS`, a colon-separated list that nested guards extend, and that every
  grandchild inherits) and runs a small watchdog in its own session. The watchdog holds the
  read end of a pipe whose write end only the owner holds; when the owner dies, the pipe
  closes and the watchdog stops every process carrying the tag (SIGTERM, SIGKILL after a
  short grace), then exits. :func:`sweep` does the same on demand, which is how leftovers of
  a dead instance are found again from the tag recorded in its state file.

Finding tagged processes reads `/proc/<pid>/environ`, which is Linux; elsewhere the functions
find nothing and only the graceful paths apply.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "OWNERS_ENV",
    "Guard",
    "die_with_parent",
    "find_tagged",
    "is_running",
    "process_start",
    "sweep",
]

OWNERS_ENV = "KUBELLM_OWNERS"
PR_SET_PDEATHSIG = 1
PROC = Path("/proc")

_prctl: Any = None


def _load_prctl() -> Any:
    """libc's prctl, resolved in the parent: a forked child must not load libraries."""
    global _prctl
    if _prctl is None and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
    return _prctl


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child receive `sig` when the calling thread exits.

    Returns None where the platform has no `PR_SET_PDEATHSIG`. The parent's pid is read now,
    in the parent; the child re-checks it after the prctl, because a parent that died
    between fork and prctl would otherwise never be noticed.
    """
    prctl = _load_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def process_start(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (tells a reused pid apart)."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def is_running(pid: int, start: int | None = None) -> bool:
    """True while `pid` runs (not a zombie) and, if `start` is given, started then."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            return False
        if start is not None and int(fields[19]) != start:
            return False  # the pid was reused
    except (OSError, IndexError, ValueError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owners(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return []
    prefix = OWNERS_ENV.encode() + b"="
    for entry in raw.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace").split(":")
    return []


def find_tagged(tag: str) -> list[int]:
    """Pids of the live processes (other than this one) started under `tag`."""
    if not tag or not PROC.is_dir():
        return []
    me = os.getpid()
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) != me and tag in _owners(int(entry.name)):
            found.append(int(entry.name))
    return found


def _signal_all(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def sweep(tag: str, grace: float = 2.0) -> list[int]:
    """Stop every process tagged `tag`: SIGTERM, then SIGKILL after `grace` seconds.

    Returns the pids that were found. Processes forked meanwhile are tagged too, so the
    kill is repeated until none is left (a few rounds at most).
    """
    first = find_tagged(tag)
    if not first:
        return []
    _signal_all(first, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and find_tagged(tag):
        time.sleep(0.05)
    seen = set(first)
    for _ in range(5):
        rest = find_tagged(tag)
        if not rest:
            break
        seen.update(rest)
        _signal_all(rest, signal.SIGKILL)
        time.sleep(0.05)
    return sorted(seen)


class Guard:
    """Processes started with this guard's `env()` die when this process dies.

    `name` appears in the tag and in the watchdog's message. `keep_fds` are handed to the
    watchdog so that they stay open until the sweep is over (localkube passes the socket
    that claims its address blocks: the blocks stay taken while anything of it may run).
    """

    def __init__(self, name: str, *, keep_fds: Sequence[int] = (), grace: float = 2.0) -> None:
        self.name = name
        self.tag = f"{name}-{os.getpid()}-{secrets.token_hex(4)}"
        self.grace = grace
        read_end, self._write_end = os.pipe()  # both close-on-exec: no child inherits them
        env = dict(os.environ)
        env.pop(OWNERS_ENV, None)  # no sweep stops a watchdog: it exits after its own
        try:
            self._watchdog = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "localkube.lifetime",
                    "--tag",
                    self.tag,
                    "--fd",
                    str(read_end),
                    "--grace",
                    str(grace),
                    "--owner",
                    f"{name} (pid {os.getpid()})",
                ],
                pass_fds=(read_end, *keep_fds),
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # out of reach of the terminal's Ctrl-C and group kills
            )
        finally:
            os.close(read_end)

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default os.environ) with this guard's tag added to `KUBELLM_OWNERS`."""
        env = dict(os.environ if base is None else base)
        owners = [t for t in env.get(OWNERS_ENV, "").split(":") if t]
        if self.tag not in owners:
            owners.append(self.tag)
        env[OWNERS_ENV] = ":".join(owners)
        return env

    def tagged(self) -> list[int]:
        return find_tagged(self.tag)

    def close(self) -> list[int]:
        """Stop whatever still carries the tag, dismiss the watchdog; return the pids stopped."""
        if self._write_end < 0:
            return []
        left = sweep(self.tag, self.grace)
        with contextlib.suppress(OSError):
            os.write(self._write_end, b"q")
        os.close(self._write_end)
        self._write_end = -1
        try:
            self._watchdog.wait(10)
        except subprocess.TimeoutExpired:
            self._watchdog.kill()
            self._watchdog.wait()
        return left

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _watch(tag: str, fd: int, grace: float, owner: str) -> int:
    """The watchdog: wait until the owner dismisses it or dies; in the latter case, sweep."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    data = b""
    while True:
        try:
            chunk = os.read(fd, 64)
        except InterruptedError:
            continue
        if not chunk or b"q" in chunk:
            data += chunk
            break
    if b"q" in data:
        return 0
    stopped = sweep(tag, grace)
    if stopped:
        with contextlib.suppress(OSError):
            print(
                f"kubellm: {owner} is gone; stopped {len(stopped)} process(es) it had started",
                file=sys.stderr,
                flush=True,
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localkube.lifetime")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--grace", type=float, default=2.0)
    parser.add_argument("--owner", default="the owner")
    args = parser.parse_args(argv)
    return _watch(args.tag, args.fd, args.grace, args.owner)


if __name__ == "__main__":
    sys.exit(main())
