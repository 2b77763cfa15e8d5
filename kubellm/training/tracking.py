"""MLflow bookkeeping of one training: the run, its metrics, the logged model, the version.

Rules this module keeps:

- One run per training, even across pod restarts: the run id is stored in the output dir,
  and a resumed training reopens the same run (its metric history simply continues).
- Only the main process (rank 0) talks to MLflow; other ranks get ``tracker=None``.
- Nothing half-registered: the model version is created last, then tagged and aliased; if
  any of that fails the version is deleted again and the run ends FAILED.
- Model logging passes explicit pip requirements: inference of requirements imports
  torchvision and fails without it (and is slow anyway).
"""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from kubellm.redaction import redact, strip_userinfo
from kubellm.registry import Registry
from kubellm.training.data import LoadedDataset
from kubellm.training.options import TrainOptions

__all__ = [
    "TAG_BASE_MODEL",
    "TAG_DATASET_DIGEST",
    "TAG_GENERATION",
    "TAG_LLM",
    "TAG_METHOD",
    "TAG_RUN_ID",
    "MlflowMetricsCallback",
    "Tracker",
    "gate_verdict",
    "metric_logs",
    "pip_requirements",
]

log = logging.getLogger(__name__)

TAG_LLM = "kubellm.dev/llm"
TAG_GENERATION = "kubellm.dev/generation"
TAG_METHOD = "kubellm.dev/method"
TAG_BASE_MODEL = "kubellm.dev/base-model"
TAG_DATASET_DIGEST = "kubellm.dev/dataset-digest"
TAG_RUN_ID = "kubellm.dev/run-id"

STATE_FILE = "kubellm-run.json"

# Keys of the Trainer's log dicts that become MLflow metrics, under the name logged.
_METRIC_NAMES = {
    "loss": "loss",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
    "tokens_per_second": "tokens_per_second",
    "epoch": "epoch",
}


def metric_logs(logs: dict[str, Any]) -> dict[str, float]:
    """The finite numeric metrics of a Trainer log dict, under our names."""
    out: dict[str, float] = {}
    for key, name in _METRIC_NAMES.items():
        value = logs.get(key)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and math.isfinite(float(value)):  # type: ignore[arg-type]
            out[name] = float(value)  # type: ignore[arg-type]
    return out


def gate_verdict(eval_loss: float | None, max_eval_loss: float | None) -> str | None:
    """The reason a model must not be registered, or None when it may be."""
    if max_eval_loss is None:
        return None
    if eval_loss is None or not math.isfinite(eval_loss):
        return f"quality gate: eval loss unavailable (--max-eval-loss {max_eval_loss:g})"
    if eval_loss > max_eval_loss:
        return f"quality gate: eval loss {eval_loss:.4f} > --max-eval-loss {max_eval_loss:g}"
    return None


def pip_requirements(*, adapter: bool = False) -> list[str]:
    """Pinned requirements of a logged model: what loading it needs, nothing guessed."""
    from importlib.metadata import PackageNotFoundError, version

    names = ["torch", "transformers", "tokenizers", "safetensors", "accelerate"]
    if adapter:
        names.append("peft")
    reqs = []
    for name in names:
        try:
            reqs.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            reqs.append(name)
    return reqs


class MlflowMetricsCallback(TrainerCallback):  # type: ignore[misc]
    """Sends each Trainer log (loss, learning rate, grad norm, tokens/s) to the run, by step.

    Logged asynchronously: a synchronous database write per log would cost throughput.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        metrics = metric_logs(logs or {})
        if metrics:
            import mlflow

            mlflow.log_metrics(
                metrics, step=state.global_step, run_id=self.run_id, synchronous=False
            )


def _sqlite_artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """For a local sqlite store, artifacts beside the database instead of ``./mlruns``."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    if not db.is_absolute():
        db = Path.cwd() / db
    return (db.parent / f"{db.stem}-artifacts" / experiment).as_uri()


@dataclass
class Tracker:
    """The MLflow side of one training (main process only)."""

    opts: TrainOptions
    registry: Registry
    run_id: str = ""
    resumed_run: bool = False

    @property
    def state_path(self) -> Path:
        return self.opts.output_dir / STATE_FILE

    def read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        if data.get("tracking_uri") != self.opts.tracking_uri:
            return {}
        if data.get("digest") != self.opts.digest():
            return {}
        return data if isinstance(data, dict) else {}

    def write_state(self, **extra: Any) -> None:
        data = {
            "run_id": self.run_id,
            "tracking_uri": self.opts.tracking_uri,
            "digest": self.opts.digest(),
            **extra,
        }
        self.opts.output_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state_path)

    def _experiment_id(self) -> str:
        client = self.registry.mlflow
        name = self.opts.experiment
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        location = _sqlite_artifact_location(self.opts.tracking_uri, name)
        return str(client.create_experiment(name, artifact_location=location))

    def start(self) -> str:
        """Open the run (the previous attempt's when resuming); log params and tags."""
        import mlflow

        mlflow.set_tracking_uri(self.opts.tracking_uri)
        client = self.registry.mlflow
        previous = self.read_state().get("run_id")
        if previous:
            try:
                status = client.get_run(previous).info.status
            except Exception:
                status = None
            if status is not None and status != "FINISHED":
                self.run_id = previous
                self.resumed_run = True
                client.update_run(previous, status="RUNNING")
        if not self.run_id:
            run = client.create_run(
                self._experiment_id(),
                run_name=f"{self.opts.llm_name}-{self.opts.method}"
                + (f"-g{self.opts.generation}" if self.opts.generation else ""),
                tags={TAG_LLM: self.opts.llm_name, TAG_METHOD: self.opts.method},
            )
            self.run_id = run.info.run_id
            params = {k: redact(v) for k, v in self.opts.params().items()}
            mlflow.log_params(params, run_id=self.run_id)
            if self.opts.generation:
                client.set_tag(self.run_id, TAG_GENERATION, self.opts.generation)
        self.write_state()
        return self.run_id

    def log_dataset(self, dataset: LoadedDataset, train_blocks: int, eval_blocks: int) -> None:
        import mlflow
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag
        from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

        try:
            with warnings.catch_warnings():  # "can be interpreted in multiple ways": harmless
                warnings.simplefilter("ignore")
                source = resolve_dataset_source(strip_userinfo(dataset.source))
        except Exception:
            from mlflow.data.http_dataset_source import HTTPDatasetSource

            source = HTTPDatasetSource(f"https://huggingface.co/datasets/{dataset.source}")
        meta = MetaDataset(source=source, name=dataset.name, digest=dataset.digest)  # type: ignore[abstract]
        # The client API, not ``mlflow.start_run``: leaving that context manager would mark
        # the run FINISHED while training has not even started.
        context = InputTag(key=MLFLOW_DATASET_CONTEXT, value="training")
        entity = DatasetInput(dataset=meta._to_mlflow_entity(), tags=[context])
        self.registry.mlflow.log_inputs(self.run_id, datasets=[entity])
        self.registry.mlflow.set_tag(self.run_id, TAG_DATASET_DIGEST, dataset.digest)
        mlflow.log_params(
            {
                "dataset_documents": str(len(dataset.documents)),
                "dataset_train_blocks": str(train_blocks),
                "dataset_eval_blocks": str(eval_blocks),
            },
            run_id=self.run_id,
        )

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        import mlflow

        finite = {k: v for k, v in metrics.items() if math.isfinite(v)}
        if finite:
            mlflow.log_metrics(finite, step=step, run_id=self.run_id)

    def flush(self) -> None:
        import mlflow

        mlflow.flush_async_logging()

    def log_and_register(
        self, model: Any, tokenizer: Any, *, adapter: bool, base_ref: str | None
    ) -> str:
        """Log the model (transformers flavor), register it, tag it, set the alias.

        Returns the new version. Deletes the version again if tagging or aliasing fails.
        """
        import mlflow

        mlflow.set_tracking_uri(self.opts.tracking_uri)
        info = mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tokenizer},
            name="model",
            task="text-generation",
            pip_requirements=pip_requirements(adapter=adapter),
            run_id=self.run_id,  # no fluent active run: its end would mark the run FINISHED
        )
        name = self.opts.registered_model
        self.registry.ensure_registered_model(name)
        client = self.registry.mlflow
        # MLflow 3 logged models live under models:/m-<id>; a tracking *server* only accepts
        # that source together with its model_id (a sqlite client does not check).
        mv = client.create_model_version(
            name,
            source=info.model_uri,
            run_id=self.run_id,
            model_id=getattr(info, "model_id", None),
            await_creation_for=300,
        )
        version = str(mv.version)
        try:
            tags = {
                TAG_LLM: self.opts.llm_name,
                TAG_METHOD: self.opts.method,
                TAG_RUN_ID: self.run_id,
            }
            if self.opts.generation:
                tags[TAG_GENERATION] = self.opts.generation
            if base_ref:
                tags[TAG_BASE_MODEL] = base_ref
            self.registry.set_version_tags(name, version, tags)
            self.registry.set_alias(name, self.opts.alias, version)
        except Exception:
            self.unregister(version)
            raise
        return version

    def unregister(self, version: str) -> None:
        try:
            self.registry.mlflow.delete_model_version(self.opts.registered_model, version)
        except Exception as exc:  # the original error matters more; say what is left
            log.error("could not delete half-registered version %s: %s", version, exc)

    def end(self, status: str, *, error: str | None = None) -> None:
        """Close the run as FINISHED, FAILED or KILLED (never raises)."""
        try:
            import mlflow

            mlflow.flush_async_logging()
            if error:
                self.registry.mlflow.set_tag(self.run_id, "kubellm.dev/error", redact(error)[:5000])
            self.registry.mlflow.set_terminated(self.run_id, status=status)
        except Exception as exc:
            log.error("could not mark run %s %s: %s", self.run_id, status, exc)
