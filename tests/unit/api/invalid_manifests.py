"""LLM manifests that must be refused, each with the field its error must name, and edge
manifests that must be accepted.

Shared data, not tests: `test_llm_validation` checks every case against the pydantic models
and the offline CRD validator; an e2e test can apply the same manifests to a real
kube-apiserver (`invalid_manifests()` / `valid_edge_manifests()` give whole objects, named
`invalid-<case>` / `edge-<case>`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from kubellm.api import goyaml

__all__ = [
    "BASE_EXAMPLE",
    "INVALID",
    "VALID_EDGES",
    "Case",
    "base_manifest",
    "invalid_manifests",
    "valid_edge_manifests",
]

BASE_EXAMPLE = Path(__file__).resolve().parents[3] / "examples/tiny-pretrain.yaml"

Mutation = Callable[[dict[str, Any]], None]


class Case(NamedTuple):
    id: str
    mutate: Mutation
    field: str  # the path every refusal must name: `<field>: <message>`


def base_manifest() -> dict[str, Any]:
    """The tiny-pretrain example, read as kubectl reads it."""
    manifest: dict[str, Any] = goyaml.load(BASE_EXAMPLE.read_text())
    return manifest


def _set(path: str, value: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        keys = path.split(".")
        node = obj
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        keys = path.split(".")
        node = obj
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return mutate


def _canary(steps: list[dict[str, Any]], **more: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        rollout = obj["spec"].setdefault("rollout", {})
        rollout["strategy"] = "Canary"
        rollout["canary"] = {"steps": steps, **more}

    return mutate


def _steps(*weights: int, pause: str = "1m") -> list[dict[str, Any]]:
    return [{"weight": w, "pause": pause} for w in weights]


CANARY = "spec.rollout.canary"
WATCH = "spec.rollout.postPromotion"
QUALITY = "spec.rollout.evaluation"
_CM = {"name": "bot-eval", "key": "eval.jsonl"}
EVAL = "spec.training.dataset.evalFraction"
LOADTEST = "spec.rollout.loadTest"
URI = "spec.mlflow.trackingUri"


def _window(duration: str, warmup: str) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        _set(f"{LOADTEST}.duration", duration)(obj)
        _set(f"{LOADTEST}.warmup", warmup)(obj)

    return mutate


INVALID: list[Case] = [
    Case(
        "replicas-max-below-min",
        _set("spec.serving.replicas", {"min": 3, "max": 1}),
        "spec.serving.replicas.max",
    ),
    Case(
        "replicas-min-negative", _set("spec.serving.replicas.min", -1), "spec.serving.replicas.min"
    ),
    Case(
        "replicas-min-zero-without-scale-to-zero-after",
        _set("spec.serving.replicas.min", 0),
        "spec.serving.scaleToZeroAfter",
    ),
    Case(
        "scale-to-zero-after-with-min-one",
        _set("spec.serving.scaleToZeroAfter", "10m"),
        "spec.serving.scaleToZeroAfter",
    ),
    Case(
        "pretrain-without-architecture", _drop("spec.model.architecture"), "spec.model.architecture"
    ),
    Case("lora-without-base", _set("spec.training.method", "lora"), "spec.model.base"),
    Case("full-without-base", _set("spec.training.method", "full"), "spec.model.base"),
    Case("unknown-method", _set("spec.training.method", "distill"), "spec.training.method"),
    Case(
        "missing-registered-model",
        _drop("spec.model.registeredModel"),
        "spec.model.registeredModel",
    ),
    Case(
        "bad-registered-model-name",
        _set("spec.model.registeredModel", "has space"),
        "spec.model.registeredModel",
    ),
    Case(
        "missing-dataset-uri",
        _set("spec.training.dataset", {"textField": "text"}),
        "spec.training.dataset.uri",
    ),
    Case(
        "epochs-and-max-steps",
        _set("spec.training.hyperparameters.epochs", 2),
        "spec.training.hyperparameters.maxSteps",
    ),
    Case(
        "learning-rate-not-a-number",
        _set("spec.training.hyperparameters.learningRate", "fast"),
        "spec.training.hyperparameters.learningRate",
    ),
    Case(  # what an unquoted `learningRate: 5e-4` becomes in kubectl
        "learning-rate-as-yaml-number",
        _set("spec.training.hyperparameters.learningRate", 0.0005),
        "spec.training.hyperparameters.learningRate",
    ),
    Case(
        "batch-size-zero",
        _set("spec.training.hyperparameters.batchSize", 0),
        "spec.training.hyperparameters.batchSize",
    ),
    Case(
        "memory-not-a-quantity",
        _set("spec.training.resources.memory", "lots"),
        "spec.training.resources.memory",
    ),
    Case("negative-gpus", _set("spec.training.resources.gpus", -1), "spec.training.resources.gpus"),
    Case(
        "duration-not-a-duration",
        _set(f"{LOADTEST}.duration", "ten seconds"),
        f"{LOADTEST}.duration",
    ),
    Case(
        "error-rate-above-one",
        _set(f"{LOADTEST}.slo.maxErrorRate", "1.5"),
        f"{LOADTEST}.slo.maxErrorRate",
    ),
    Case("zero-users", _set(f"{LOADTEST}.users", 0), f"{LOADTEST}.users"),
    Case(
        "unknown-autoscaling-metric",
        _set("spec.serving.autoscaling.metric", "GPU"),
        "spec.serving.autoscaling.metric",
    ),
    Case(
        "same-aliases",
        _set("spec.rollout.productionAlias", "candidate"),
        "spec.rollout.productionAlias",
    ),
    Case("unknown-field", _set("spec.serving.replicaCount", 3), "spec.serving.replicaCount"),
    Case("unknown-engine", _set("spec.serving.engine.name", "tgi"), "spec.serving.engine.name"),
    Case("nodes-zero", _set("spec.training.nodes", 0), "spec.training.nodes"),
    Case(
        "p95-latency-zero",
        _set(f"{LOADTEST}.slo.p95LatencyMs", 0),
        f"{LOADTEST}.slo.p95LatencyMs",
    ),
    Case(
        "bad-toleration-effect",
        _set("spec.training.tolerations", [{"key": "gpu", "effect": "Sometimes"}]),
        "spec.training.tolerations[0].effect",
    ),
    # evalFraction: more than 0 (the eval loss needs examples), at most what `kubellm train` takes
    Case("eval-fraction-zero", _set(EVAL, "0"), EVAL),
    Case("eval-fraction-zero-decimals", _set(EVAL, "0.000"), EVAL),
    Case("eval-fraction-one", _set(EVAL, "1"), EVAL),
    Case("eval-fraction-above-train-limit", _set(EVAL, "0.75"), EVAL),
    Case("eval-fraction-above-one", _set(EVAL, "1.5"), EVAL),
    # the load test's warm-up is shorter than its measured window, which is not empty
    Case("warmup-equals-duration", _set(f"{LOADTEST}.warmup", "8s"), f"{LOADTEST}.warmup"),
    Case("warmup-longer-than-duration", _window("30s", "1m"), f"{LOADTEST}.warmup"),
    Case("warmup-longer-in-smaller-units", _window("1s", "1500ms"), f"{LOADTEST}.warmup"),
    Case("duration-zero", _window("0s", "0s"), f"{LOADTEST}.duration"),
    Case("duration-units-misordered", _set(f"{LOADTEST}.duration", "1s1m"), f"{LOADTEST}.duration"),
    # rollout.strategy Canary: bounded steps, increasing weights, positive bounded pauses
    Case("canary-strategy-without-canary", _set("spec.rollout.strategy", "Canary"), CANARY),
    Case("canary-with-blue-green", _set(CANARY, {"steps": _steps(10)}), CANARY),
    Case(
        "canary-unknown-strategy", _set("spec.rollout.strategy", "Rolling"), "spec.rollout.strategy"
    ),
    Case("canary-no-steps", _canary([]), f"{CANARY}.steps"),
    Case("canary-eleven-steps", _canary(_steps(*range(1, 12))), f"{CANARY}.steps"),
    Case("canary-weights-decreasing", _canary(_steps(50, 10)), f"{CANARY}.steps"),
    Case("canary-weights-repeated", _canary(_steps(10, 10)), f"{CANARY}.steps"),
    Case("canary-weight-zero", _canary(_steps(0)), f"{CANARY}.steps[0].weight"),
    Case("canary-weight-above-100", _canary(_steps(10, 101)), f"{CANARY}.steps[1].weight"),
    Case("canary-pause-zero", _canary(_steps(10, pause="0s")), f"{CANARY}.steps[0].pause"),
    Case("canary-pause-over-1h", _canary(_steps(10, pause="61m")), f"{CANARY}.steps[0].pause"),
    Case("canary-pause-no-unit", _canary(_steps(10, pause="60")), f"{CANARY}.steps[0].pause"),
    Case("canary-min-requests-zero", _canary(_steps(10), minRequests=0), f"{CANARY}.minRequests"),
    Case("canary-interval-zero", _canary(_steps(10), interval="0s"), f"{CANARY}.interval"),
    Case("canary-interval-over-5m", _canary(_steps(10), interval="6m"), f"{CANARY}.interval"),
    # rollout.postPromotion: a positive window up to 24h, judged every 0-5m
    Case("watch-window-zero", _set(WATCH, {"window": "0s"}), f"{WATCH}.window"),
    Case("watch-window-over-24h", _set(WATCH, {"window": "25h"}), f"{WATCH}.window"),
    Case("watch-interval-zero", _set(WATCH, {"interval": "0s"}), f"{WATCH}.interval"),
    Case("watch-interval-over-5m", _set(WATCH, {"interval": "6m"}), f"{WATCH}.interval"),
    Case("watch-min-requests-zero", _set(WATCH, {"minRequests": 0}), f"{WATCH}.minRequests"),
    # rollout.evaluation: exactly one source, a file-name key, bounded objectives
    Case(
        "quality-two-sources",
        _set(QUALITY, {"uri": "s3://a/b", "configMap": _CM}),
        f"{QUALITY}.configMap",
    ),
    Case("quality-no-source", _set(QUALITY, {"maxPrompts": 3}), f"{QUALITY}.configMap"),
    Case(
        "quality-key-dotdot",
        _set(QUALITY, {"configMap": {"name": "e", "key": ".."}}),
        f"{QUALITY}.configMap.key",
    ),
    Case(
        "quality-key-path",
        _set(QUALITY, {"configMap": {"name": "e", "key": "a/b"}}),
        f"{QUALITY}.configMap.key",
    ),
    Case(
        "quality-name-upper",
        _set(QUALITY, {"configMap": {"name": "Eval", "key": "k"}}),
        f"{QUALITY}.configMap.name",
    ),
    Case(
        "quality-match-rate-above-1",
        _set(QUALITY, {"uri": "s3://a/b", "minMatchRate": "1.5"}),
        f"{QUALITY}.minMatchRate",
    ),
    Case(
        "quality-prompts-1001",
        _set(QUALITY, {"uri": "s3://a/b", "maxPrompts": 1001}),
        f"{QUALITY}.maxPrompts",
    ),
    Case(
        "quality-match-fuzzy",
        _set(QUALITY, {"uri": "s3://a/b", "match": "fuzzy"}),
        f"{QUALITY}.match",
    ),
    # mlflow.trackingUri: an http(s) server with a host, or a local file store
    Case("tracking-uri-ftp", _set(URI, "ftp://mlflow.example.com/mlruns"), URI),
    Case("tracking-uri-javascript", _set(URI, "javascript:alert(1)"), URI),
    Case("tracking-uri-bare-word", _set(URI, "mlflow"), URI),
    Case("tracking-uri-host-port-without-scheme", _set(URI, "mlflow:5000"), URI),
    Case("tracking-uri-uppercase-scheme", _set(URI, "HTTP://mlflow:5000"), URI),
    Case("tracking-uri-http-without-host", _set(URI, "http://"), URI),
    Case("tracking-uri-http-empty-host", _set(URI, "http:///mlflow"), URI),
    Case("tracking-uri-https-port-only", _set(URI, "https://:5000"), URI),
    Case("tracking-uri-with-credentials", _set(URI, "https://bot:s3cret@mlflow.example.com"), URI),
    Case("tracking-uri-space-in-host", _set(URI, "http://ml flow:5000"), URI),
    Case("tracking-uri-file-remote-host", _set(URI, "file://nas/mlruns"), URI),
    Case("tracking-uri-file-relative", _set(URI, "file:mlruns"), URI),
]

# (case id, mutation): manifests at the edge of a rule, which every validator must accept
VALID_EDGES: list[tuple[str, Mutation]] = [
    ("eval-fraction-small", _set(EVAL, "0.01")),
    ("eval-fraction-at-train-limit", _set(EVAL, "0.5")),
    ("warmup-just-shorter", _window("1m", "59s")),
    ("warmup-zero", _window("1ms", "0s")),
    ("duration-mixed-units", _set(f"{LOADTEST}.duration", "1h2m3s4ms")),
    ("tracking-uri-service", _set(URI, "http://mlflow.mlflow.svc:5000")),
    ("tracking-uri-https-path", _set(URI, "https://mlflow.example.com/prefix/?team=a#x")),
    ("tracking-uri-ipv4", _set(URI, "http://127.0.0.1:5000")),
    ("tracking-uri-ipv6", _set(URI, "http://[::1]:5000")),
    ("tracking-uri-file", _set(URI, "file:///var/mlruns")),
    ("tracking-uri-file-short", _set(URI, "file:/var/mlruns")),
    ("tracking-uri-file-localhost", _set(URI, "file://localhost/var/mlruns")),
    ("canary-one-step", _canary(_steps(100))),
    ("canary-ten-steps", _canary(_steps(*range(10, 101, 10)), minRequests=1, interval="5m")),
    ("canary-pause-1h", _canary(_steps(10, 50, pause="1h"))),
    ("blue-green-explicit", _set("spec.rollout.strategy", "BlueGreen")),
    ("watch-defaults", _set(WATCH, {})),
    ("quality-configmap-dotted-key", _set(QUALITY, {"configMap": {"name": "e.v", "key": ".e"}})),
    (
        "quality-uri-all-objectives",
        _set(
            QUALITY,
            {
                "uri": "s3://a/b",
                "minMatchRate": "1",
                "maxPerplexityRegressionPercent": 0,
                "match": "contains",
                "maxPrompts": 1000,
            },
        ),
    ),
    ("watch-24h-every-5m", _set(WATCH, {"window": "24h", "interval": "5m", "minRequests": 1})),
    (
        "scale-to-zero",
        _set("spec.serving", {"replicas": {"min": 0, "max": 2}, "scaleToZeroAfter": "90s"}),
    ),
]


def _named(obj: dict[str, Any], name: str) -> dict[str, Any]:
    obj["metadata"]["name"] = name
    return obj


def invalid_manifests() -> list[tuple[str, dict[str, Any], str]]:
    """(case id, whole LLM manifest named `invalid-<id>`, field the refusal must name)."""
    out = []
    for case in INVALID:
        obj = base_manifest()
        case.mutate(obj)
        out.append((case.id, _named(obj, f"invalid-{case.id}"[:40].rstrip("-")), case.field))
    return out


def valid_edge_manifests() -> list[tuple[str, dict[str, Any]]]:
    """(case id, whole LLM manifest named `edge-<id>`) that every validator must accept."""
    out = []
    for case_id, mutate in VALID_EDGES:
        obj = base_manifest()
        mutate(obj)
        out.append((case_id, _named(obj, f"edge-{case_id}"[:40].rstrip("-"))))
    return out
