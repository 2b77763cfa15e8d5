"""The training Job of an LLM: one Job per trained spec, torchrun across nodes when asked.

Besides the Job: a headless Service for torchrun's rendezvous when training.nodes > 1, and
the checkpoint claim when spec.training.checkpoints asks for a new one. `training_hash`
names the Job, so only a change to what is trained starts a new one.
"""

from __future__ import annotations

from typing import Any

from kubellm.api.resource import LLM
from kubellm.api.spec import TrainingMethod
from kubellm.operator.builders.common import (
    common_env,
    credentials,
    metadata,
    resources,
    tracking_uri,
)
from kubellm.operator.config import OperatorConfig
from kubellm.operator.hardening import harden
from kubellm.operator.naming import (
    TRAINING_HASH_ANNOTATION,
    Component,
    checkpoints_claim_name,
    child_labels,
    content_hash,
    training_job_name,
)

__all__ = ["build_training_job", "training_hash"]

CHECKPOINT_DIR = "/checkpoints"
TORCHRUN_PORT = 29500


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
        "metadata": metadata(llm, claim, child_labels(llm.name, Component.TRAINING)),
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
    uri = tracking_uri(llm, config)
    env = common_env(llm, config)
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
    if training.checkpoints is not None:
        settings["SAVE_STEPS"] = training.checkpoints.every_steps
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
                "envFrom": credentials(llm, "training"),
                "resources": resources(training.resources, config.gpu_resource),
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
                "metadata": metadata(llm, name, labels),
                "spec": {
                    "clusterIP": "None",
                    "selector": {"batch.kubernetes.io/job-name": name},
                    "ports": [{"name": "rendezvous", "port": TORCHRUN_PORT}],
                    "publishNotReadyAddresses": True,
                },
            }
        )
    meta = metadata(llm, name, labels)
    meta["annotations"] = {TRAINING_HASH_ANNOTATION: thash}
    objects.insert(0, {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec})
    if claim is not None:
        objects.append(claim)
    return objects
