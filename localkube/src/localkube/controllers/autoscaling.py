"""The HorizontalPodAutoscaler (autoscaling/v2) controller.

There is no metrics server or adapter in localkube, so this controller plays one: a `Pods`
metric is read by scraping each ready pod's Prometheus endpoint
(`http://<podIP>:<prometheus.io/port or 8000><prometheus.io/path or /metrics>`, the
samples named like the metric summed per pod, then averaged over pods), as
prometheus-adapter would serve it; `Resource` cpu is the CPU the pod's processes use
(psutil, if installed) over the containers' cpu requests. `set_metric()` overrides a
metric for tests. Replicas are written through the target's `/scale` subresource, within
[minReplicas, maxReplicas], and status and conditions say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from localkube.client import HPAS, ApiError, KubeClient, Resource
from localkube.controllers.base import Clock, Controller, EventRecorder, Informer, Key
from localkube.controllers.meta import match_selector, now_str, set_condition
from localkube.controllers.replicas import (
    clamp,
    desired_replicas,
    metric_from_text,
    parse_quantity,
    stabilize,
)
from localkube.controllers.replicasets import pod_is_ready

__all__ = ["HpaController"]

log = logging.getLogger(__name__)

JSON = dict[str, Any]
SYNC_PERIOD = 15.0
DEFAULT_DOWN_WINDOW = 300.0


def _target_resource(ref: JSON) -> Resource:
    api_version = str(ref.get("apiVersion") or "apps/v1")
    group, _, version = api_version.rpartition("/")
    kind = str(ref.get("kind") or "Deployment")
    return Resource(group, version, kind.lower() + "s", kind)


class _CpuMeter:
    """CPU cores used by a set of process trees since the last reading (psutil)."""

    def __init__(self) -> None:
        self._procs: dict[int, Any] = {}

    def cores(self, pids: list[int]) -> float | None:
        try:
            import psutil
        except ImportError:
            return None
        total = 0.0
        baseline = True
        for pid in pids:
            try:
                root = psutil.Process(pid)
                for p in [root, *root.children(recursive=True)]:
                    if p.pid not in self._procs:  # the first reading only sets a baseline
                        self._procs[p.pid] = p
                        p.cpu_percent(interval=None)
                        baseline = False
                        continue
                    total += self._procs[p.pid].cpu_percent(interval=None) / 100.0
            except psutil.Error:
                continue
        return total if baseline and pids else None


class HpaController(Controller):
    name = "horizontal-pod-autoscaler"

    def __init__(
        self,
        client: KubeClient,
        hpas: Informer,
        pods: Informer,
        clock: Clock,
        *,
        pids: Callable[[str, str], list[int]] | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.hpas = hpas
        self.pods = pods
        self.clock = clock
        self.pids = pids
        self.recorder = EventRecorder(client, "horizontal-pod-autoscaler")
        self.overrides: dict[tuple[str, str, str], float] = {}
        self._history: dict[Key, list[tuple[float, int]]] = {}
        self._cpu = _CpuMeter()
        self._session: aiohttp.ClientSession | None = None
        hpas.add_handler(self.enqueue_obj)

    def set_metric(self, namespace: str, hpa: str, metric: str, value: float | None) -> None:
        """Test hook: the average value of `metric` for this HPA (None removes it)."""
        if value is None:
            self.overrides.pop((namespace, hpa, metric), None)
        else:
            self.overrides[(namespace, hpa, metric)] = float(value)
            self.queue.add((namespace, hpa))

    async def stop(self) -> None:
        await super().stop()
        if self._session is not None:
            await self._session.close()

    async def _scrape(self, pod: JSON, metric: str) -> float | None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        ann = pod["metadata"].get("annotations") or {}
        port = ann.get("prometheus.io/port", "8000")
        path = ann.get("prometheus.io/path", "/metrics")
        url = f"http://{pod['status']['podIP']}:{port}{path}"
        try:
            async with self._session.get(url) as resp:
                if resp.status != 200:
                    return None
                text = await resp.text()
            return metric_from_text(text, metric)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return None

    async def _pods_metric(self, key: Key, name: str, pods: list[JSON]) -> float | None:
        if (key[0], key[1], name) in self.overrides:
            return self.overrides[(key[0], key[1], name)]
        values = await asyncio.gather(*(self._scrape(p, name) for p in pods))
        got = [v for v in values if v is not None]
        return sum(got) / len(got) if got else None

    def _cpu_utilization(self, pods: list[JSON]) -> tuple[float, float] | None:
        """(average cores per pod, average requested cores per pod)."""
        if self.pids is None or not pods:
            return None
        used, requested = 0.0, 0.0
        for p in pods:
            cores = self._cpu.cores(self.pids(p["metadata"]["namespace"], p["metadata"]["name"]))
            if cores is None:
                return None
            used += cores
            for c in (p.get("spec") or {}).get("containers") or []:
                req = ((c.get("resources") or {}).get("requests") or {}).get("cpu")
                if req is None:
                    return None
                requested += parse_quantity(req)
        return used / len(pods), requested / len(pods)

    async def reconcile(self, key: Key) -> float | None:
        hpa = self.hpas.get(*key)
        period = max(0.2, self.clock.seconds(SYNC_PERIOD))
        if hpa is None or hpa["metadata"].get("deletionTimestamp"):
            self._history.pop(key, None)
            return None
        ns, spec = key[0], hpa.get("spec") or {}
        old = hpa.get("status") or {}
        conds = list(old.get("conditions") or [])
        now = now_str()
        ref = spec.get("scaleTargetRef") or {}
        res = _target_resource(ref)
        try:
            scale = await self.client.get(res, ns, ref.get("name", ""), "scale")
            target = await self.client.get(res, ns, ref.get("name", ""))
        except ApiError as exc:
            conds = set_condition(
                conds, "AbleToScale", "False", "FailedGetScale", str(exc), now=now
            )
            await self._write(hpa, {**old, "conditions": conds})
            return period
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        conds = set_condition(
            conds,
            "AbleToScale",
            "True",
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
            now=now,
        )
        minimum = int(spec.get("minReplicas") or 1)
        maximum = int(spec.get("maxReplicas") or minimum)
        status: JSON = {**old, "currentReplicas": current, "desiredReplicas": current}
        if current == 0:
            conds = set_condition(
                conds,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                now=now,
            )
            await self._write(hpa, {**status, "conditions": conds})
            return period
        selector = (target.get("spec") or {}).get("selector")
        pods = [
            p
            for p in self.pods.items(ns)
            if match_selector(selector, p["metadata"].get("labels"))
            and not p["metadata"].get("deletionTimestamp")
            and pod_is_ready(p)
            and (p.get("status") or {}).get("podIP")
        ]
        ratios: list[float] = []
        current_metrics: list[JSON] = []
        failures: list[tuple[str, str]] = []
        for m in spec.get("metrics") or []:
            mtype = m.get("type")
            if mtype == "Pods":
                mname = ((m.get("pods") or {}).get("metric") or {}).get("name", "")
                mtarget = (m.get("pods") or {}).get("target") or {}
                avg = await self._pods_metric(key, mname, pods)
                if avg is None:
                    failures.append(
                        (
                            "FailedGetPodsMetric",
                            f"unable to get metric {mname}: no metrics returned from pods",
                        )
                    )
                    continue
                target_value = parse_quantity(mtarget.get("averageValue", 1))
                ratios.append(avg / target_value if target_value else 1.0)
                current_metrics.append(
                    {
                        "type": "Pods",
                        "pods": {"metric": {"name": mname}, "current": {"averageValue": _qty(avg)}},
                    }
                )
            elif mtype == "Resource" and (m.get("resource") or {}).get("name") == "cpu":
                mtarget = (m.get("resource") or {}).get("target") or {}
                usage = self._cpu_utilization(pods)
                override = self.overrides.get((key[0], key[1], "cpu"))
                if override is not None:
                    usage = (override, 1.0)
                if usage is None:
                    failures.append(
                        ("FailedGetResourceMetric", "unable to get metrics for resource cpu")
                    )
                    continue
                used, requested = usage
                if "averageUtilization" in mtarget:
                    util = 100.0 * used / requested if requested else 0.0
                    ratios.append(util / float(mtarget["averageUtilization"]))
                    current_metrics.append(
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "current": {
                                    "averageUtilization": round(util),
                                    "averageValue": _qty(used),
                                },
                            },
                        }
                    )
                else:
                    target_value = parse_quantity(mtarget.get("averageValue", 1))
                    ratios.append(used / target_value if target_value else 1.0)
                    current_metrics.append(
                        {
                            "type": "Resource",
                            "resource": {"name": "cpu", "current": {"averageValue": _qty(used)}},
                        }
                    )
            else:
                failures.append(
                    (
                        "InvalidMetricSourceType",
                        f"metric type {mtype!r} is not supported by localkube",
                    )
                )
        if not ratios:
            reason, message = (
                failures[0] if failures else ("FailedGetPodsMetric", "no metrics configured")
            )
            conds = set_condition(
                conds,
                "ScalingActive",
                "False",
                reason,
                f"the HPA was unable to compute the replica count: {message}",
                now=now,
            )
            self.recorder.event(hpa, "Warning", reason, message)
            await self._write(
                hpa, {**status, "currentMetrics": current_metrics, "conditions": conds}
            )
            return period
        conds = set_condition(
            conds,
            "ScalingActive",
            "True",
            "ValidMetricFound",
            "the HPA was able to successfully calculate a replica count",
            now=now,
        )
        proposal = desired_replicas(current, ratios)
        behavior = spec.get("behavior") or {}
        down_window = self.clock.seconds(
            float(
                (behavior.get("scaleDown") or {}).get(
                    "stabilizationWindowSeconds", DEFAULT_DOWN_WINDOW
                )
            )
        )
        up_window = self.clock.seconds(
            float((behavior.get("scaleUp") or {}).get("stabilizationWindowSeconds", 0))
        )
        t = time.monotonic()
        history = self._history.setdefault(key, [])
        stable = stabilize(history, t, proposal, current, down_window, up_window)
        history.append((t, proposal))
        keep = max(down_window, up_window)
        self._history[key] = [(ht, r) for ht, r in history if t - ht <= keep]
        desired, limit = clamp(stable, minimum, maximum)
        if limit:
            msg = (
                "the desired replica count is more than the maximum replica count"
                if limit == "TooManyReplicas"
                else "the desired replica count is less than the minimum replica count"
            )
            conds = set_condition(conds, "ScalingLimited", "True", limit, msg, now=now)
        else:
            conds = set_condition(
                conds,
                "ScalingLimited",
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
                now=now,
            )
        status.update(desiredReplicas=desired, currentMetrics=current_metrics, conditions=conds)
        if desired != current:
            await self.client.patch(
                res, ns, ref.get("name", ""), {"spec": {"replicas": desired}}, sub="scale"
            )
            status["lastScaleTime"] = now
            direction = "above" if desired > current else "below"
            what = current_metrics[0]["type"].lower() + " metric"
            if current_metrics and current_metrics[0]["type"] == "Pods":
                what = f"pods metric {current_metrics[0]['pods']['metric']['name']}"
            self.recorder.event(
                hpa,
                "Normal",
                "SuccessfulRescale",
                f"New size: {desired}; reason: {what} {direction} target",
            )
            conds = set_condition(
                conds,
                "AbleToScale",
                "True",
                "SucceededRescale",
                f"the HPA controller was able to update the target scale to {desired}",
                now=now,
            )
            status["conditions"] = conds
        else:
            conds = set_condition(
                conds,
                "AbleToScale",
                "True",
                "ReadyForNewScale",
                "recommended size matches current size",
                now=now,
            )
            status["conditions"] = conds
        await self._write(hpa, status)
        return period

    async def _write(self, hpa: JSON, status: JSON) -> None:
        if status == (hpa.get("status") or {}):
            return
        with contextlib.suppress(ApiError):
            obj = await self.client.patch_status(
                HPAS, hpa["metadata"]["namespace"], hpa["metadata"]["name"], status
            )
            self.hpas.upsert(obj)


def _qty(value: float) -> str:
    """A float as a Kubernetes quantity string (milli-units when fractional)."""
    if abs(value - round(value)) < 1e-9:
        return str(round(value))
    return f"{round(value * 1000)}m"
