"""One Pod's processes on the node: volumes, containers, probes, restarts, status.

A :class:`PodRuntime` is created by the kubelet for each Pod bound to the node. It
materialises the volumes, runs init containers in order and then the containers with the
pod's restart policy (CrashLoopBackOff between restarts), runs the probes, and publishes
the Pod status through `/status` whenever something changes (coalesced). Stopping sends
SIGTERM to each container's process group and SIGKILL after the grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localkube.client import PODS, ApiError
from localkube.controllers.env import EnvError, build_env, expand, map_paths
from localkube.controllers.faults import PodFault
from localkube.controllers.httpfaults import ENV as HTTP_FAULTS_ENV
from localkube.controllers.httpfaults import fault_file
from localkube.controllers.meta import now_str
from localkube.controllers.podstatus import (
    ContainerRecord,
    crashloop_delay,
    exit_code_of,
    pod_conditions,
    pod_phase,
    termination_message,
)
from localkube.controllers.probes import ProbeTracker, run_probe
from localkube.controllers.volumes import container_mounts, materialise_volumes
from localkube.lifetime import die_with_parent

if TYPE_CHECKING:
    from localkube.controllers.kubelet import Kubelet

__all__ = ["PodRuntime"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
DEFAULT_TERMINATION_PATH = "/dev/termination-log"


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class PodRuntime:
    """The processes and state of one Pod on this node."""

    def __init__(self, kubelet: Kubelet, pod: JSON) -> None:
        self.k = kubelet
        self.pod = pod
        meta, spec = pod["metadata"], pod.get("spec") or {}
        self.ns: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta.get("uid", "")
        self.policy: str = spec.get("restartPolicy") or "Always"
        self.ip = kubelet.ip_pool.allocate(self.uid, (pod.get("status") or {}).get("podIP"))
        self.dir = kubelet.workdir / "pods" / self.ns / f"{self.name}-{self.uid[:8]}"
        self.log_dir = kubelet.log_dir / self.ns / self.name
        self.init_specs: list[JSON] = list(spec.get("initContainers") or [])
        self.specs: list[JSON] = list(spec.get("containers") or [])
        self.init_records = [
            ContainerRecord(c["name"], c.get("image", ""), init=True) for c in self.init_specs
        ]
        for r in self.init_records:
            r.state = {"waiting": {"reason": "PodInitializing"}}
        self.records = [ContainerRecord(c["name"], c.get("image", "")) for c in self.specs]
        if self.init_specs:
            for r in self.records:
                r.state = {"waiting": {"reason": "PodInitializing"}}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.volume_dirs: dict[str, str] = {}
        self.extra_env: dict[str, str] = {}
        self.initialized = not self.init_specs
        self.init_failed = False
        self.start_time = now_str()
        self.stopping = False
        self.stop_event = asyncio.Event()
        self._dirty = asyncio.Event()
        self._published: JSON | None = None
        self._conditions: list[JSON] = list((pod.get("status") or {}).get("conditions") or [])
        self._tasks: set[asyncio.Task[Any]] = set()
        self._main: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._stopper: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._main = asyncio.create_task(self._run(), name=f"pod-{self.ns}/{self.name}")
        self._publisher = asyncio.create_task(self._publish_loop(), name=f"pod-status-{self.name}")
        self.mark_dirty()

    def _spawn_task(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def mark_dirty(self) -> None:
        self._dirty.set()

    def event(self, etype: str, reason: str, message: str) -> None:
        self.k.recorder.event(self.pod, etype, reason, message)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True if the sleep ran its course."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_event.wait(), max(0.0, seconds))
        return not self.stopping

    async def _run(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.log_dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "work").mkdir(exist_ok=True)
            (self.dir / "termination").mkdir(exist_ok=True)
            while not self.stopping:
                try:
                    self.volume_dirs = materialise_volumes(
                        self.pod,
                        self.dir,
                        self.k.workdir / "claims",
                        self.k.sources(self.ns).configmaps,
                        self.k.sources(self.ns).secrets,
                    )
                    if self.k.pod_setup is not None:
                        self.extra_env = await self.k.pod_setup(self.pod, self.volume_dirs)
                    break
                except EnvError as exc:
                    self.event("Warning", "FailedMount", str(exc))
                    if not await self._sleep(max(0.2, self.k.clock.seconds(2))):
                        return
            for spec, rec in zip(self.init_specs, self.init_records, strict=True):
                code = await self._container_loop(spec, rec)
                if self.stopping:
                    return
                if code != 0:
                    self.init_failed = True
                    self.mark_dirty()
                    return
            self.initialized = True
            self.mark_dirty()
            await asyncio.gather(
                *(self._container_loop(s, r) for s, r in zip(self.specs, self.records, strict=True))
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("kubelet: pod %s/%s failed", self.ns, self.name)
        finally:
            self.mark_dirty()

    # -- one container -------------------------------------------------------------------
    def _mounts(self, spec: JSON, term_file: Path) -> dict[str, str]:
        mounts = container_mounts(spec, self.volume_dirs)
        mounts[str(spec.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH)] = str(term_file)
        return mounts

    def _command(self, spec: JSON, env: dict[str, str], mounts: dict[str, str]) -> list[str]:
        argv = [str(a) for a in (spec.get("command") or [])] + [
            str(a) for a in (spec.get("args") or [])
        ]
        return [map_paths(expand(a, env), mounts) for a in argv]

    async def _start_process(
        self, spec: JSON, rec: ContainerRecord, fault: PodFault | None
    ) -> tuple[asyncio.subprocess.Process, dict[str, str], str]:
        name = rec.name
        term_file = self.dir / "termination" / name
        term_file.unlink(missing_ok=True)
        mounts = self._mounts(spec, term_file)
        base = {**self.k.base_env(self.pod), **self.extra_env}
        env = build_env(spec, self.pod, self.ip, self.k.sources(self.ns), base)
        env = {k: map_paths(v, mounts) for k, v in env.items()}
        env["KUBELLM_TERMINATION_LOG"] = str(term_file)
        env["KUBELLM_MOUNTS"] = json.dumps(mounts)
        env["KUBELLM_POD_DIR"] = str(self.dir)
        env[HTTP_FAULTS_ENV] = str(fault_file(self.dir, name))
        self.k.http_faults.sync_pod(self.dir, self.pod, [spec])
        argv = self._command(spec, env, mounts)
        if not argv:
            raise LookupError("no command specified")
        if fault is not None and fault.kind == "exit":
            argv = [sys.executable, "-c", f"import sys; sys.exit({int(fault.exit_code)})"]
        wd = spec.get("workingDir")
        cwd = map_paths(str(wd), mounts) if wd else str(self.dir / "work")
        if wd and cwd == wd:  # not under a volume: a per-pod stand-in directory
            cwd = str(self.dir / "work" / str(wd).lstrip("/"))
        Path(cwd).mkdir(parents=True, exist_ok=True)
        log_file = self.log_dir / f"{name}.log"
        if log_file.exists() and (rec.restart_count > 0 or rec.last_state):
            shutil.move(str(log_file), str(self.log_dir / f"{name}.previous.log"))
        with open(log_file, "ab") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGKILL),
                pass_fds=self.k.keep_fds,
            )
        return proc, env, cwd

    async def _container_loop(self, spec: JSON, rec: ContainerRecord) -> int:
        """Run one container per its restart policy; return the last exit code."""
        exit_code = 0
        while not self.stopping:
            pod = self.pod
            slow = self.k.faults.take(pod, rec.name, ("slow-start",))
            if slow is not None and not await self._sleep(slow.after):
                return exit_code
            fault = self.k.faults.take(pod, rec.name, ("crash", "exit"))
            started_at = now_str()
            proc: asyncio.subprocess.Process | None = None
            message = ""
            env: dict[str, str] = {}
            cwd = ""
            try:
                proc, env, cwd = await self._start_process(spec, rec, fault)
            except EnvError as exc:
                rec.state = {
                    "waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}
                }
                self.event("Warning", "Failed", f"Error: {exc}")
                self.mark_dirty()
                if not await self._sleep(max(0.2, self.k.clock.seconds(2))):
                    return exit_code
                continue
            except LookupError as exc:
                rec.state = {"waiting": {"reason": "CreateContainerError", "message": str(exc)}}
                self.event("Warning", "Failed", f"Error: {exc}")
                self.mark_dirty()
                if not await self._sleep(max(0.2, self.k.clock.seconds(10))):
                    return exit_code
                continue
            except OSError as exc:
                exit_code, message = 128, f"failed to start container: {exc}"
                self.event("Warning", "Failed", f"Error: {message}")
            if proc is not None:
                exit_code = await self._supervise(spec, rec, proc, fault, started_at, env, cwd)
            term_text = b""
            with contextlib.suppress(OSError):
                term_text = (self.dir / "termination" / rec.name).read_bytes()
            log_tail = b""
            with contextlib.suppress(OSError):
                log_tail = (self.log_dir / f"{rec.name}.log").read_bytes()[-8192:]
            policy = str(spec.get("terminationMessagePolicy") or "File")
            message = message or termination_message(term_text, log_tail, exit_code, policy)
            terminated: JSON = {
                "exitCode": exit_code,
                "reason": "Completed"
                if exit_code == 0
                else ("StartError" if proc is None else "Error"),
                "startedAt": started_at,
                "finishedAt": now_str(),
                "containerID": rec.container_id,
            }
            if message:
                terminated["message"] = message
            rec.state = {"terminated": terminated}
            rec.ready = False
            rec.started = False
            self.mark_dirty()
            if self.stopping:
                return exit_code
            if rec.init:
                restart = exit_code != 0 and self.policy != "Never"
            else:
                restart = self.policy == "Always" or (self.policy == "OnFailure" and exit_code != 0)
            if not restart:
                return exit_code
            delay = self.k.clock.seconds(crashloop_delay(rec.restart_count))
            rec.last_state = {"terminated": terminated}
            rec.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {int(delay / max(self.k.clock.scale, 1e-9))}s "
                    f"restarting failed container={rec.name} pod={self.name}_{self.ns}({self.uid})",
                }
            }
            self.event(
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {rec.name} in pod {self.name}",
            )
            self.mark_dirty()
            if not await self._sleep(delay):
                return exit_code
            rec.restart_count += 1
        return exit_code

    async def _supervise(
        self,
        spec: JSON,
        rec: ContainerRecord,
        proc: asyncio.subprocess.Process,
        fault: PodFault | None,
        started_at: str,
        env: dict[str, str],
        cwd: str,
    ) -> int:
        self.procs[rec.name] = proc
        rec.container_id = f"localkube://{proc.pid}"
        rec.state = {"running": {"startedAt": started_at}}
        rec.ready = False
        rec.started = not spec.get("startupProbe")
        self.event("Normal", "Started", f"Started container {rec.name}")
        helpers: list[asyncio.Task[Any]] = []
        if not rec.init:
            helpers.append(self._spawn_task(self._probe_container(spec, rec, proc, env, cwd)))
        if fault is not None and fault.kind == "crash":
            helpers.append(self._spawn_task(self._crash_later(proc, fault.after)))
        self.mark_dirty()
        try:
            returncode = await proc.wait()
        finally:
            for t in helpers:
                t.cancel()
            self.procs.pop(rec.name, None)
        return exit_code_of(returncode)

    async def _crash_later(self, proc: asyncio.subprocess.Process, after: float) -> None:
        await asyncio.sleep(after)
        log.info("pod fault: crashing %s/%s pid %d", self.ns, self.name, proc.pid)
        _signal_group(proc.pid, signal.SIGKILL)

    async def _kill_container(self, proc: asyncio.subprocess.Process, grace: float) -> None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)

    # -- probes --------------------------------------------------------------------------
    async def _probe_container(
        self, spec: JSON, rec: ContainerRecord, proc: asyncio.subprocess.Process, env: Any, cwd: Any
    ) -> None:
        never_ready = self.k.faults.take(self.pod, rec.name, ("never-ready",)) is not None
        startup = spec.get("startupProbe")
        if startup:
            verdict = await self._probe_until(startup, spec, env, cwd)
            if verdict is False:
                self.event("Warning", "Unhealthy", f"Startup probe failed for container {rec.name}")
                await self._kill_container(proc, self._grace())
                return
            rec.started = True
            self.mark_dirty()
        readiness, liveness = spec.get("readinessProbe"), spec.get("livenessProbe")
        if not readiness:
            rec.ready = not never_ready
            self.mark_dirty()
        loops = []
        if readiness:
            loops.append(self._readiness_loop(readiness, spec, rec, env, cwd, never_ready))
        if liveness:
            loops.append(self._liveness_loop(liveness, spec, rec, proc, env, cwd))
        if loops:
            await asyncio.gather(*loops)

    def _grace(self) -> float:
        return self.k.clock.seconds(
            float((self.pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        )

    def _period(self, probe: JSON) -> float:
        return max(0.05, self.k.clock.seconds(float(probe.get("periodSeconds") or 10)))

    async def _probe_until(self, probe: JSON, spec: JSON, env: Any, cwd: Any) -> bool:
        """Probe until the first verdict (successThreshold or failureThreshold reached)."""
        await asyncio.sleep(self.k.clock.seconds(float(probe.get("initialDelaySeconds") or 0)))
        tracker = ProbeTracker.from_spec(probe)
        while True:
            verdict = tracker.record(await run_probe(probe, spec, self.ip, env=env, cwd=cwd))
            if verdict is not None:
                return verdict
            await asyncio.sleep(self._period(probe))

    async def _readiness_loop(
        self, probe: JSON, spec: JSON, rec: ContainerRecord, env: Any, cwd: Any, never_ready: bool
    ) -> None:
        await asyncio.sleep(self.k.clock.seconds(float(probe.get("initialDelaySeconds") or 0)))
        tracker = ProbeTracker.from_spec(probe)
        while True:
            ok = (not never_ready) and await run_probe(probe, spec, self.ip, env=env, cwd=cwd)
            verdict = tracker.record(ok)
            if verdict is not None and verdict != rec.ready:
                rec.ready = verdict
                if not verdict:
                    self.event(
                        "Warning", "Unhealthy", f"Readiness probe failed for container {rec.name}"
                    )
                self.mark_dirty()
            await asyncio.sleep(self._period(probe))

    async def _liveness_loop(
        self,
        probe: JSON,
        spec: JSON,
        rec: ContainerRecord,
        proc: asyncio.subprocess.Process,
        env: Any,
        cwd: Any,
    ) -> None:
        await asyncio.sleep(self.k.clock.seconds(float(probe.get("initialDelaySeconds") or 0)))
        tracker = ProbeTracker.from_spec(probe)
        while tracker.record(await run_probe(probe, spec, self.ip, env=env, cwd=cwd)) is not False:
            await asyncio.sleep(self._period(probe))
        self.event("Warning", "Unhealthy", f"Liveness probe failed for container {rec.name}")
        self.event(
            "Normal", "Killing", f"Container {rec.name} failed liveness probe, will be restarted"
        )
        await self._kill_container(proc, self._grace())

    # -- stopping ------------------------------------------------------------------------
    def request_stop(self, grace: float) -> None:
        if self._stopper is None:
            self._stopper = asyncio.create_task(self._stop(grace), name=f"pod-stop-{self.name}")

    async def _stop(self, grace: float) -> None:
        self.stopping = True
        self.stop_event.set()
        procs = list(self.procs.values())
        for p in procs:
            _signal_group(p.pid, signal.SIGTERM)
        if procs:
            self.event("Normal", "Killing", "Stopping container(s)")
            _done, pending = await asyncio.wait(
                [asyncio.ensure_future(p.wait()) for p in procs],
                timeout=self.k.clock.seconds(grace),
            )
            for p in procs:
                if p.returncode is None:
                    _signal_group(p.pid, signal.SIGKILL)
            if pending:
                await asyncio.wait(pending, timeout=5)
        for p in procs:  # children that outlived their group leader
            _signal_group(p.pid, signal.SIGKILL)
        if self._main is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._main), 5)
        await self._cancel_all()
        await self.k._remove(self.pod)

    async def kill_now(self) -> None:
        self.stopping = True
        self.stop_event.set()
        for p in list(self.procs.values()):
            _signal_group(p.pid, signal.SIGKILL)
        for p in list(self.procs.values()):
            with contextlib.suppress(TimeoutError, ProcessLookupError):
                await asyncio.wait_for(p.wait(), 5)
        await self._cancel_all()
        if self._stopper is not None and self._stopper is not asyncio.current_task():
            self._stopper.cancel()

    async def _cancel_all(self) -> None:
        tasks = [t for t in (self._main, self._publisher, *self._tasks) if t is not None]
        for t in tasks:
            if t is not asyncio.current_task():
                t.cancel()
        for t in tasks:
            if t is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    # -- status --------------------------------------------------------------------------
    def build_status(self) -> JSON:
        if not self.initialized:
            phase = "Failed" if self.init_failed else "Pending"
        else:
            phase = pod_phase(self.records, self.policy, False)
        if self.init_failed:
            for r in self.records:
                r.state = {"waiting": {"reason": "PodInitializing"}}
        ready_all = bool(self.records) and all(r.ready for r in self.records) and phase == "Running"
        now = now_str()
        self._conditions = pod_conditions(
            self._conditions,
            now=now,
            initialized=self.initialized,
            init_incomplete=[
                r.name
                for r in self.init_records
                if not r.terminated or r.terminated.get("exitCode")
            ],
            containers_ready=ready_all,
            not_ready_names=[r.name for r in self.records if not r.ready],
            phase=phase,
        )
        status: JSON = {
            "phase": phase,
            "conditions": self._conditions,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "startTime": self.start_time,
            # the API server sets it at creation and refuses any change (immutable)
            "qosClass": (self.pod.get("status") or {}).get("qosClass") or "BestEffort",
            "containerStatuses": [r.to_status() for r in self.records],
        }
        if self.init_records:
            status["initContainerStatuses"] = [r.to_status() for r in self.init_records]
        return status

    async def _publish_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            status = self.build_status()
            if status == self._published:
                continue
            try:
                obj = await self.k.client.patch_status(PODS, self.ns, self.name, status)
                self._published = status
                if obj.get("metadata", {}).get("uid") == self.uid:
                    self.k.pods.upsert(obj)
            except ApiError as exc:
                if exc.not_found:
                    return
                await asyncio.sleep(0.3)
                self.mark_dirty()
            except Exception:
                await asyncio.sleep(0.3)
                self.mark_dirty()
            await asyncio.sleep(0.01)  # coalesce bursts of changes into one write
