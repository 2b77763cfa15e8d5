"""The primitive under every cluster and demo: processes that die with their owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from localkube.lifetime import Guard, find_tagged, sweep

OWNER = """
import signal, subprocess, sys, time
from localkube.lifetime import Guard, die_with_parent
guard = Guard("test-owner")
# its own session, as a pod: a process-group kill of the owner would not reach it
detached = subprocess.Popen(
    ["sh", "-c", "sleep 300 & sleep 301 & wait"], env=guard.env(), start_new_session=True
)
direct = subprocess.Popen(["sleep", "302"], preexec_fn=die_with_parent(signal.SIGKILL))
print(guard.tag, detached.pid, direct.pid, flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _gone_within(pids: list[int], seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        alive = [p for p in pids if _running(p)]
        if not alive:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"still running after {seconds}s: {alive}")


def test_a_sigkilled_owner_takes_its_tagged_processes_and_children_along():
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    tag, detached, direct = owner.stdout.readline().split()
    deadline = time.monotonic() + 10
    while len(find_tagged(tag)) < 3 and time.monotonic() < deadline:  # sh and its two sleeps
        time.sleep(0.05)
    tagged = find_tagged(tag)
    assert int(detached) in tagged and len(tagged) == 3
    owner.kill()
    owner.wait(5)
    took = _gone_within([*tagged, int(direct)], 5)
    print(f"gone {took:.2f}s after the owner's SIGKILL")


def test_closing_a_guard_stops_what_is_left_and_the_watchdog():
    guard = Guard("test-close", grace=0.5)
    proc = subprocess.Popen(["sleep", "300"], env=guard.env(), start_new_session=True)
    assert find_tagged(guard.tag) == [proc.pid]
    assert guard.env()["KUBELLM_OWNERS"].endswith(guard.tag)
    assert guard.close() == [proc.pid]
    assert proc.wait(5) == -signal.SIGTERM
    assert guard._watchdog.returncode == 0
    assert sweep(guard.tag) == [] and guard.close() == []


def test_nested_guards_extend_the_owner_list(monkeypatch):
    outer = Guard("outer")
    try:
        monkeypatch.setenv("KUBELLM_OWNERS", outer.tag)
        inner = Guard("inner")
        try:
            env = inner.env()
            assert env["KUBELLM_OWNERS"] == f"{outer.tag}:{inner.tag}"
            proc = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
            assert find_tagged(outer.tag) == find_tagged(inner.tag) == [proc.pid]
            assert os.getpid() not in find_tagged(outer.tag)
        finally:
            inner.close()
        proc.wait(5)
    finally:
        outer.close()
