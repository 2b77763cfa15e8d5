"""Pure builders of an LLM's child manifests.

Each function returns a plain manifest dict; nothing here talks to a server. Building is
separate from sending (style guide): the executor adds the owner reference and the
spec-hash annotation, then creates or patches. Containers run `kubellm <subcommand>`, the
one image's entrypoint; `OperatorConfig.command` lets the local demo run the same commands
as local processes.
"""

from __future__ import annotations

import json
from typing import Any

from kubellm.api.identity import API_VERSION, KIND
from kubellm.api.resource import LLM
from kubellm.api.spec import (
    AutoscalingMetric,
    EngineName,
    ResourcesSpec,
    SloSpec,
    TrainingMethod,
)
from kubellm.operator.config import OperatorConfig
from kubellm.operator.hardening import harden
from kubellm.operator.naming import (
    LABEL_COMPONENT,
    LABEL_LLM,
    LABEL_VERSION,
    TRAINING_HASH_ANNOTATION,
    Component,
    candidate_service_name,
    checkpoints_claim_name,
    child_labels,
    content_hash,
    deployment_name,
    hpa_name,
    loadtest_job_name,
    production_service_name,
    prompts_configmap_name,
    training_job_name,
)
from kubellm.redaction import strip_userinfo

__all__ = [
    "INFLIGHT_METRIC",
    "build_candidate_service",
    "build_hpa",
    "build_loadtest_job",
    "build_production_service",
    "build_prompts_configmap",
    "build_serving_deployment",
    "build_training_job",
    "owner_reference",
    "slo_argument",
    "training_hash",
]

INFLIGHT_METRIC = "kubellm_inflight_requests"
MODEL_DIR = "/models"
CHECKPOINT_DIR = "/checkpoints"
PROMPTS_DIR = "/etc/kubellm/prompts"
REPORT_DIR = "/report"
API_KEY_DIR = "/etc/kubellm/api-key"
TORCHRUN_PORT = 29500

DEFAULT_PROMPTS = (
    "Write one sentence about Kubernetes operators.",
    "Question: How do I deploy a model? Answer:",
    "Explain what a load test measures.",
    "The production service",
)


def owner_reference(llm: LLM) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": llm.name,
        "uid": llm.uid or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def training_hash(llm: LLM) -> str:
    """Hash of what training depends on: the training section and the model it starts from.

    Editing serving or rollout settings must not retrain; editing hyperparameters must.
    """
    assert llm.spec.training is not None
    model = llm.spec.model
    training = llm.spec.training.model_dump(mode="json", by_alias=True)
    training.pop("checkpoints", None)  # where checkpoints live is not what is trained
    return content_hash(
        {
            "training": training,
            "base": model.base,
            "architecture": model.architecture,
            "registeredModel": model.registered_model,
        }
    )


def _tracking_uri(llm: LLM, config: OperatorConfig) -> str | None:
    """The tracking URI children get, without userinfo (argv and env are widely readable;
    workloads take credentials from spec.mlflow.credentialsSecret)."""
    uri = llm.spec.mlflow.tracking_uri or config.tracking_uri
    return strip_userinfo(uri) if uri else None


def _common_env(llm: LLM, config: OperatorConfig) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "KUBELLM_LLM_NAME", "value": llm.name},
    ]
    uri = _tracking_uri(llm, config)
    if uri:
        env.append({"name": "MLFLOW_TRACKING_URI", "value": uri})
    for key, value in sorted(config.child_env.items()):
        env.append({"name": key, "value": value})
    return env


def _credentials(llm: LLM, role: str) -> list[dict[str, Any]]:
    """``envFrom`` with the MLflow credentials of one workload role, least privilege first.

    training: log a run, register a version, move the candidate alias; fetch-model: read the
    version; loadtest: log a run and tag the version. The serving container is given none:
    it reads the model from its volume, and a process that faces users (or a third-party
    image such as vLLM) must hold no registry credentials.
    """
    mlflow = llm.spec.mlflow
    narrow = {
        "training": mlflow.training_credentials_secret,
        "fetch-model": mlflow.model_reader_credentials_secret,
        "loadtest": mlflow.load_test_credentials_secret,
    }[role]
    secret = narrow or mlflow.credentials_secret
    return [{"secretRef": {"name": secret}}] if secret else []


def _api_key_volume(llm: LLM) -> list[dict[str, Any]]:
    """The serving API key Secret as a read-only file ``API_KEY_DIR/api-key``, if any."""
    ref = llm.spec.serving.api_key_secret
    if ref is None:
        return []
    items = [{"key": ref.key, "path": "api-key"}]
    return [{"name": "api-key", "secret": {"secretName": ref.name, "items": items}}]


def _api_key_mount() -> dict[str, Any]:
    return {"name": "api-key", "mountPath": API_KEY_DIR, "readOnly": True}


def _resources(res: ResourcesSpec, gpu_resource: str) -> dict[str, Any]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if res.cpu:
        requests["cpu"] = res.cpu
        limits["cpu"] = res.cpu
    if res.memory:
        requests["memory"] = res.memory
        limits["memory"] = res.memory
    if res.gpus:
        limits[gpu_resource] = str(res.gpus)
        requests[gpu_resource] = str(res.gpus)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _metadata(llm: LLM, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": llm.namespace, "labels": labels}


def _checkpoints(llm: LLM) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """The checkpoint volume, the output dir in it, and the claim to create (if any).

    On a claim, each LLM writes under a folder of its own name (a claim may be shared), made
    by `kubellm train` itself, so the pod's non-root user owns it (a subPath would be made
    by the kubelet, as root). Inside it `kubellm train` keys checkpoints, tokenizer and its
    MLflow run by the training's digest, so a replaced pod resumes and another training of
    the same LLM starts fresh.
    """
    training = llm.spec.training
    assert training is not None
    spec = training.checkpoints
    if spec is None:
        return {"name": "checkpoints", "emptyDir": {}}, CHECKPOINT_DIR, None
    claim = spec.claim_name or checkpoints_claim_name(llm.name)
    volume = {"name": "checkpoints", "persistentVolumeClaim": {"claimName": claim}}
    output = f"{CHECKPOINT_DIR}/{llm.name}"
    if spec.claim_name is not None:
        return volume, output, None
    claim_spec: dict[str, Any] = {
        # every node's rank writes and reads the same folder under torchrun
        "accessModes": ["ReadWriteMany" if training.nodes > 1 else "ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.size}},
    }
    if spec.storage_class_name:
        claim_spec["storageClassName"] = spec.storage_class_name
    manifest = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(llm, claim, child_labels(llm.name, Component.TRAINING)),
        "spec": claim_spec,
    }
    return volume, output, manifest


def build_training_job(llm: LLM, config: OperatorConfig) -> list[dict[str, Any]]:
    """The training Job (plus a headless Service for torchrun rendezvous when nodes > 1, and
    the checkpoint claim when spec.training.checkpoints asks for a new one)."""
    training = llm.spec.training
    assert training is not None
    thash = training_hash(llm)
    name = training_job_name(llm.name, thash)
    labels = child_labels(llm.name, Component.TRAINING)
    hp = training.hyperparameters
    uri = _tracking_uri(llm, config)
    env = _common_env(llm, config)
    volume, output_dir, claim = _checkpoints(llm)
    settings: dict[str, Any] = {
        "METHOD": training.method.value,
        "DATASET": training.dataset.uri,
        "TEXT_FIELD": training.dataset.text_field,
        "EVAL_FRACTION": training.dataset.eval_fraction,
        "LEARNING_RATE": hp.learning_rate,
        "BATCH_SIZE": hp.batch_size,
        "SEQUENCE_LENGTH": hp.sequence_length,
        "GRADIENT_ACCUMULATION": hp.gradient_accumulation,
        "SEED": hp.seed,
        "REGISTERED_MODEL": llm.spec.model.registered_model,
        "ALIAS": llm.spec.rollout.candidate_alias,
        "OUTPUT_DIR": output_dir,
        "GENERATION": llm.generation,
        "EXPERIMENT": f"kubellm/{llm.namespace}/{llm.name}",
    }
    if hp.epochs is not None:
        settings["EPOCHS"] = hp.epochs
    if hp.max_steps is not None:
        settings["MAX_STEPS"] = hp.max_steps
    if training.method is TrainingMethod.LORA:
        settings["LORA_RANK"] = hp.lora_rank
        settings["LORA_ALPHA"] = hp.lora_alpha
    if training.method is TrainingMethod.PRETRAIN:
        settings["ARCHITECTURE"] = llm.spec.model.architecture
        settings["VOCAB_SIZE"] = hp.vocab_size
    elif llm.spec.model.base:
        settings["BASE_MODEL"] = llm.spec.model.base
    if training.max_eval_loss is not None:
        settings["MAX_EVAL_LOSS"] = training.max_eval_loss
    if uri:
        settings["TRACKING_URI"] = uri
    env.extend({"name": f"KUBELLM_{k}", "value": str(v)} for k, v in settings.items())

    gpus = training.resources.gpus
    image = training.image or (config.cuda_image if gpus else config.image)
    command = [*config.command, "train"]
    nodes = training.nodes
    objects: list[dict[str, Any]] = []
    pod_spec: dict[str, Any] = {
        # OnFailure restarts the container inside the same pod, so even the checkpoint
        # emptyDir survives and `kubellm train` resumes from its last checkpoint instead of
        # step 0; with spec.training.checkpoints a replacement pod resumes as well.
        "restartPolicy": "OnFailure",
        "containers": [
            {
                "name": "train",
                "image": image,
                "command": command,
                "env": env,
                "envFrom": _credentials(llm, "training"),
                "resources": _resources(training.resources, config.gpu_resource),
                "volumeMounts": [{"name": "checkpoints", "mountPath": CHECKPOINT_DIR}],
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
        "volumes": [volume],
    }
    node_selector = {**config.default_node_selector, **training.node_selector}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    tolerations = [
        *config.default_tolerations,
        *(
            t.model_dump(mode="json", by_alias=True, exclude_none=True)
            for t in training.tolerations
        ),
    ]
    if tolerations:
        pod_spec["tolerations"] = tolerations
    # /tmp without a sizeLimit: MLflow writes the whole model there before uploading it.
    harden(pod_spec, config, tmp_limit=None)
    job_spec: dict[str, Any] = {
        "backoffLimit": training.backoff_limit,
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    if training.active_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = training.active_deadline_seconds
    if nodes > 1:
        # torchrun: one pod per node, rank from the completion index, rendezvous at pod 0
        # through the headless Service named after the Job (pods get <job>-<i>.<job>).
        job_spec.update(
            completionMode="Indexed",
            completions=nodes,
            parallelism=nodes,
            backoffLimit=max(training.backoff_limit, 0),
        )
        pod_spec["subdomain"] = name
        nproc = max(gpus, 1)
        pod_spec["containers"][0]["command"] = [
            "torchrun",
            f"--nnodes={nodes}",
            f"--nproc-per-node={nproc}",
            "--node-rank=$(JOB_COMPLETION_INDEX)",
            f"--master-addr={name}-0.{name}",
            f"--master-port={TORCHRUN_PORT}",
            "-m",
            "kubellm",
            "train",
        ]
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _metadata(llm, name, labels),
                "spec": {
                    "clusterIP": "None",
                    "selector": {"batch.kubernetes.io/job-name": name},
                    "ports": [{"name": "rendezvous", "port": TORCHRUN_PORT}],
                    "publishNotReadyAddresses": True,
                },
            }
        )
    meta = _metadata(llm, name, labels)
    meta["annotations"] = {TRAINING_HASH_ANNOTATION: thash}
    objects.insert(0, {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec})
    if claim is not None:
        objects.append(claim)
    return objects


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
    env = _common_env(llm, config)
    fetch = {
        "name": "fetch-model",
        "image": config.image,
        "command": [*config.command, "fetch-model", model_uri, f"{MODEL_DIR}/model"],
        "env": env,
        "envFrom": _credentials(llm, "fetch-model"),
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
        mounts.append(_api_key_mount())
    server.update(
        env=list(server.get("env") or env),
        ports=[{"name": "http", "containerPort": port}],
        resources=_resources(serving.resources, config.gpu_resource),
        volumeMounts=mounts,
        readinessProbe={
            "httpGet": {
                "path": "/readyz" if engine.name is EngineName.KUBELLM else "/health",
                "port": "http",
            },
            "periodSeconds": 2,
            "failureThreshold": 2,
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
            *_api_key_volume(llm),
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
        "metadata": _metadata(llm, name, labels),
        "spec": spec,
    }


def _service(
    llm: LLM, name: str, component: Component, version: str, config: OperatorConfig
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(llm, name, child_labels(llm.name, component)),
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


def build_prompts_configmap(llm: LLM) -> dict[str, Any]:
    prompts = llm.spec.rollout.load_test.prompts or list(DEFAULT_PROMPTS)
    lines = "\n".join(json.dumps({"prompt": p}) for p in prompts) + "\n"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(
            llm, prompts_configmap_name(llm.name), child_labels(llm.name, Component.LOADTEST)
        ),
        "data": {"prompts.jsonl": lines},
    }


def slo_argument(slo: SloSpec) -> str:
    """The `--slo` string of `kubellm loadtest` for the LLM's objectives."""
    parts = [f"maxErrorRate={slo.max_error_rate}"]
    if slo.p95_latency_ms is not None:
        parts.append(f"p95LatencyMs={slo.p95_latency_ms}")
    if slo.p95_time_to_first_token_ms is not None:
        parts.append(f"p95TimeToFirstTokenMs={slo.p95_time_to_first_token_ms}")
    if slo.min_requests_per_second is not None:
        parts.append(f"minRequestsPerSecond={slo.min_requests_per_second}")
    if slo.min_tokens_per_second is not None:
        parts.append(f"minTokensPerSecond={slo.min_tokens_per_second}")
    if slo.max_latency_regression_percent is not None:
        parts.append(f"maxLatencyRegressionPercent={slo.max_latency_regression_percent}")
    return ",".join(parts)


def build_loadtest_job(
    llm: LLM,
    version: str,
    target_url: str,
    baseline_url: str | None,
    config: OperatorConfig,
) -> dict[str, Any]:
    lt = llm.spec.rollout.load_test
    name = loadtest_job_name(llm.name, version)
    labels = child_labels(llm.name, Component.LOADTEST, version)
    slo = lt.slo
    if baseline_url is None:
        # A relative objective needs production to compare with; the first release has none.
        slo = slo.model_copy(update={"max_latency_regression_percent": None})
    args = [
        "loadtest",
        "--target",
        target_url,
        "--users",
        str(lt.users),
        "--spawn-rate",
        str(lt.spawn_rate),
        "--duration",
        lt.duration,
        "--warmup",
        lt.warmup,
        "--max-tokens",
        str(lt.max_tokens),
        "--model",
        llm.name,
        "--prompts",
        f"{PROMPTS_DIR}/prompts.jsonl",
        "--slo",
        slo_argument(slo),
        "--out",
        REPORT_DIR,
        "--registered-model",
        llm.spec.model.registered_model,
        "--model-version",
        version,
    ]
    if lt.workers:
        args += ["--workers", str(lt.workers)]
    if baseline_url:
        args += ["--baseline", baseline_url]
    uri = _tracking_uri(llm, config)
    if uri:
        args += ["--tracking-uri", uri]
    api_key = _api_key_volume(llm)
    if api_key:
        args += ["--api-key-file", f"{API_KEY_DIR}/api-key"]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "loadtest",
                "image": config.image,
                "command": [*config.command, *args],
                "env": _common_env(llm, config),
                "envFrom": _credentials(llm, "loadtest"),
                "volumeMounts": [
                    {"name": "prompts", "mountPath": PROMPTS_DIR, "readOnly": True},
                    {"name": "report", "mountPath": REPORT_DIR},
                    *([_api_key_mount()] if api_key else []),
                ],
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
        "volumes": [
            {"name": "prompts", "configMap": {"name": prompts_configmap_name(llm.name)}},
            {"name": "report", "emptyDir": {"sizeLimit": "1Gi"}},
            *api_key,
        ],
    }
    harden(pod_spec, config, tmp_limit=config.tmp_size_limit)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(llm, name, labels),
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }


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
        "metadata": _metadata(llm, hpa_name(llm.name), child_labels(llm.name, "autoscaler")),
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
