"""Serving children: a version's Deployment, the production and candidate Services, the HPA.

The Deployment downloads its registry version in an init container (which alone holds
registry credentials) and runs `kubellm serve` or the vLLM image on it; the Services select
a version's pods by label, so promotion is a selector change; the HPA is the only writer of
replicas once a version is promoted.
"""

from __future__ import annotations

from typing import Any

from kubellm.api.resource import LLM
from kubellm.api.spec import AutoscalingMetric, EngineName
from kubellm.operator.builders.common import (
    API_KEY_DIR,
    api_key_mount,
    api_key_volume,
    common_env,
    credentials,
    metadata,
    resources,
)
from kubellm.operator.config import OperatorConfig
from kubellm.operator.hardening import harden
from kubellm.operator.naming import (
    LABEL_COMPONENT,
    LABEL_LLM,
    LABEL_VERSION,
    Component,
    candidate_service_name,
    child_labels,
    deployment_name,
    hpa_name,
    production_service_name,
)

__all__ = [
    "INFLIGHT_METRIC",
    "build_candidate_service",
    "build_hpa",
    "build_production_service",
    "build_serving_deployment",
]

INFLIGHT_METRIC = "kubellm_inflight_requests"
MODEL_DIR = "/models"


def build_serving_deployment(
    llm: LLM, version: str, config: OperatorConfig, *, replicas: int | None
) -> dict[str, Any]:
    """The serving Deployment of one registry version.

    ``replicas`` is set only when the operator owns the count (a candidate under test);
    once promoted, the HorizontalPodAutoscaler is the only writer of replicas.
    """
    serving = llm.spec.serving
    engine = serving.engine
    name = deployment_name(llm.name, version)
    labels = child_labels(llm.name, Component.SERVING, version)
    model_uri = f"models:/{llm.spec.model.registered_model}/{version}"
    port = config.serving_port
    env = common_env(llm, config)
    fetch = {
        "name": "fetch-model",
        "image": config.image,
        "command": [*config.command, "fetch-model", model_uri, f"{MODEL_DIR}/model"],
        "env": env,
        "envFrom": credentials(llm, "fetch-model"),
        "volumeMounts": [{"name": "models", "mountPath": MODEL_DIR}],
    }
    if engine.name is EngineName.VLLM:
        server: dict[str, Any] = {
            "name": "server",
            "image": engine.image or config.vllm_image,
            "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
            "args": [
                f"--model={MODEL_DIR}/model",
                f"--served-model-name={llm.name}",
                "--host=0.0.0.0",
                f"--port={port}",
                f"--max-num-seqs={engine.max_batch_size}",
            ],
        }
        api_key = llm.spec.serving.api_key_secret
        if api_key is not None:  # vLLM reads its key from the environment
            server["env"] = [
                *env,
                {
                    "name": "VLLM_API_KEY",
                    "valueFrom": {"secretKeyRef": {"name": api_key.name, "key": api_key.key}},
                },
            ]
    else:
        image = engine.image or (config.cuda_image if serving.resources.gpus else config.image)
        server = {
            "name": "server",
            "image": image,
            "command": [
                *config.command,
                "serve",
                "--model",
                f"{MODEL_DIR}/model",
                "--host",
                "$(POD_IP)",
                "--port",
                str(port),
                "--served-model-name",
                llm.name,
                "--max-batch-size",
                str(engine.max_batch_size),
                "--max-new-tokens",
                str(engine.max_new_tokens),
                "--max-prompt-tokens",
                str(engine.max_prompt_tokens),
                "--max-queue",
                str(engine.max_queue),
            ],
        }
    mounts = [{"name": "models", "mountPath": MODEL_DIR}]
    if llm.spec.serving.api_key_secret is not None and engine.name is EngineName.KUBELLM:
        server["command"] += ["--api-key-file", f"{API_KEY_DIR}/api-key"]
        mounts.append(api_key_mount())
    server.update(
        env=list(server.get("env") or env),
        ports=[{"name": "http", "containerPort": port}],
        resources=resources(serving.resources, config.gpu_resource),
        volumeMounts=mounts,
        readinessProbe={
            "httpGet": {
                "path": "/readyz" if engine.name is EngineName.KUBELLM else "/health",
                "port": "http",
            },
            # probed every second: a pod starting from zero is routed to within a second
            # of turning ready; four failures (4 s, as before) take it out of the endpoints
            "periodSeconds": 1,
            "failureThreshold": 4,
        },
        livenessProbe={
            "httpGet": {
                "path": "/healthz" if engine.name is EngineName.KUBELLM else "/health",
                "port": "http",
            },
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
    )
    pod_spec: dict[str, Any] = {
        "initContainers": [fetch],
        "containers": [server],
        "volumes": [
            {"name": "models", "emptyDir": {"sizeLimit": serving.model_volume_size}},
            *api_key_volume(llm),
        ],
        "terminationGracePeriodSeconds": serving.drain_seconds + 5,
    }
    harden(pod_spec, config, tmp_limit=config.tmp_size_limit)
    if config.default_node_selector:
        pod_spec["nodeSelector"] = dict(config.default_node_selector)
    if config.default_tolerations:
        pod_spec["tolerations"] = list(config.default_tolerations)
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {LABEL_LLM: llm.name, LABEL_VERSION: version}},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "template": {
            "metadata": {
                "labels": dict(labels),
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(port),
                    "prometheus.io/path": "/metrics",
                },
            },
            "spec": pod_spec,
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(llm, name, labels),
        "spec": spec,
    }


def _service(
    llm: LLM, name: str, component: Component, version: str, config: OperatorConfig
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(llm, name, child_labels(llm.name, component)),
        "spec": {
            "type": "ClusterIP",
            "selector": {
                LABEL_LLM: llm.name,
                LABEL_COMPONENT: str(Component.SERVING),
                LABEL_VERSION: version,
            },
            "ports": [
                {
                    "name": "http",
                    "port": config.serving_port,
                    "targetPort": "http",
                    "protocol": "TCP",
                }
            ],
        },
    }


def build_production_service(llm: LLM, version: str, config: OperatorConfig) -> dict[str, Any]:
    return _service(llm, production_service_name(llm.name), Component.PRODUCTION, version, config)


def build_candidate_service(llm: LLM, version: str, config: OperatorConfig) -> dict[str, Any]:
    return _service(llm, candidate_service_name(llm.name), Component.CANDIDATE, version, config)


def build_hpa(llm: LLM, version: str) -> dict[str, Any]:
    serving = llm.spec.serving
    if serving.autoscaling.metric is AutoscalingMetric.CPU:
        metric: dict[str, Any] = {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": serving.autoscaling.target},
            },
        }
    else:
        metric = {
            "type": "Pods",
            "pods": {
                "metric": {"name": INFLIGHT_METRIC},
                "target": {"type": "AverageValue", "averageValue": str(serving.autoscaling.target)},
            },
        }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(llm, hpa_name(llm.name), child_labels(llm.name, Component.AUTOSCALER)),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployment_name(llm.name, version),
            },
            "minReplicas": max(1, serving.replicas.min),  # zero is the operator's, not the HPA's
            "maxReplicas": serving.replicas.max,
            "metrics": [metric],
        },
    }
