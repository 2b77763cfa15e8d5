"""The HPA scales a Deployment from a Pods metric scraped from the pods' /metrics."""

from __future__ import annotations

from localkube.testing.localkube import Cluster

from .controllers_support import (
    apply,
    condition,
    get,
    needs_kubectl,
    wait_for,
    web_deployment,
)

pytestmark = needs_kubectl


def metrics_deployment(queue_depth: int) -> dict:
    deploy = web_deployment("metered")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    # http.server serves the working directory: /metrics is a file in Prometheus text format
    container["args"] = [
        f"printf '# TYPE queue_depth gauge\\nqueue_depth {queue_depth}\\n' > metrics; "
        "exec python -m http.server --bind $(POD_IP) 8000"
    ]
    deploy["spec"]["template"]["metadata"]["annotations"] = {"prometheus.io/port": "8000"}
    return deploy


HPA = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "metered"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "metered"},
        "minReplicas": 1,
        "maxReplicas": 3,
        "metrics": [
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "queue_depth"},
                    "target": {"type": "AverageValue", "averageValue": "5"},
                },
            }
        ],
    },
}


def test_hpa_scales_up_from_a_pods_metric_and_stops_at_max_replicas(localkube: Cluster, ns: str):
    apply(localkube, ns, metrics_deployment(queue_depth=10))
    apply(localkube, ns, HPA)
    hpa_path = f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/metered"
    deploy_path = f"/apis/apps/v1/namespaces/{ns}/deployments/metered"
    wait_for(
        lambda: get(localkube, deploy_path)["spec"]["replicas"] == 3, timeout=20, what="scaled to 3"
    )
    hpa = wait_for(
        lambda: (h := get(localkube, hpa_path)).get("status", {}).get("desiredReplicas") == 3 and h,
        what="hpa status",
    )
    assert hpa["status"]["currentMetrics"][0]["pods"]["current"]["averageValue"] == "10"
    assert hpa["status"]["lastScaleTime"]
    assert condition(hpa, "ScalingActive")["reason"] == "ValidMetricFound"
    assert condition(hpa, "ScalingLimited")["reason"] == "TooManyReplicas"
    events = get(localkube, f"/api/v1/namespaces/{ns}/events")["items"]
    rescales = [e for e in events if e["reason"] == "SuccessfulRescale"]
    assert rescales and rescales[0]["source"]["component"] == "horizontal-pod-autoscaler"


def test_hpa_without_metrics_reports_scaling_inactive(localkube: Cluster, ns: str):
    apply(localkube, ns, web_deployment("metered"))  # serves no /metrics
    apply(localkube, ns, HPA)
    hpa_path = f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/metered"
    hpa = wait_for(
        lambda: (h := get(localkube, hpa_path)) and condition(h, "ScalingActive") and h,
        what="hpa status",
    )
    assert condition(hpa, "ScalingActive")["status"] == "False"
    assert condition(hpa, "ScalingActive")["reason"] == "FailedGetPodsMetric"
    assert (
        get(localkube, f"/apis/apps/v1/namespaces/{ns}/deployments/metered")["spec"]["replicas"]
        == 1
    )
