"""Where the served model comes from, turning it into a model + tokenizer, and bringing
a server from loading to ready.

A serving pod gets its model either from the MLflow registry (``models:/name/3``,
``models:/name@production``) or from a local directory that an init container
(``kubellm fetch-model``) already filled, so that the server container starts from local
files and another engine could read the same directory. Registry access goes through
``kubellm.registry.Registry``, the project's one MLflow client.

MLflow's transformers flavor stores the weights in ``model/`` and the tokenizer in
``components/tokenizer/``; a plain ``save_pretrained`` directory has both side by side.
``find_tokenizer_dir`` accepts both layouts.

``load_into`` is what the server runs on a thread after it starts listening: load, start
the engine, warm it up through the same path requests take, then mark the state ready.
torch and transformers are imported there, not at module level, so that the server
answers ``/healthz`` while they load.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubellm.serving.lifecycle import ServerState

__all__ = [
    "LoadedModel",
    "default_served_name",
    "fetch_model",
    "find_tokenizer_dir",
    "is_registry_uri",
    "load_into",
    "load_model",
    "longest_token_chars",
    "resolve_dtype",
    "resolve_model_dir",
]

log = logging.getLogger(__name__)

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


def is_registry_uri(spec: str) -> bool:
    return spec.startswith("models:/")


def fetch_model(uri: str, dst: Path, tracking_uri: str | None) -> Path:
    """Download a registry model into ``dst``; return the folder holding config.json.

    Over plain HTTP when the tracking server proxies the artifacts (no ``import mlflow``:
    ~2.3 s of CPU off every start from zero), else through MLflow's client."""
    from kubellm.registry import Registry, parse_model_uri
    from kubellm.registry.direct import download_proxied

    uri_tracking = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri_tracking:
        raise ValueError("a models:/ URI needs --tracking-uri (or MLFLOW_TRACKING_URI)")
    parse_model_uri(uri)  # a malformed URI is a ValueError before any request
    fetched = download_proxied(uri, dst, uri_tracking)
    if fetched is not None:
        return fetched
    return Registry(uri_tracking).download_model(uri, dst)


def resolve_model_dir(spec: str, tracking_uri: str | None, download_dir: Path) -> Path:
    """A local directory for ``spec`` (a registry URI is downloaded into ``download_dir``)."""
    if is_registry_uri(spec):
        return fetch_model(spec, download_dir, tracking_uri)
    from kubellm.registry import find_model_dir

    path = Path(spec)
    if not path.is_dir():
        raise FileNotFoundError(f"model directory {spec!r} does not exist")
    return find_model_dir(path)


def find_tokenizer_dir(model_dir: Path) -> Path:
    """The tokenizer next to the weights, or in an MLflow ``components/tokenizer`` folder."""
    if any((model_dir / f).exists() for f in _TOKENIZER_FILES):
        return model_dir
    for root in (model_dir, model_dir.parent):
        candidate = root / "components" / "tokenizer"
        if candidate.is_dir():
            return candidate
        for found in sorted(root.rglob("tokenizer_config.json")):
            return found.parent
    raise FileNotFoundError(f"no tokenizer files next to or under {model_dir}")


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    model_dir: Path
    context_len: int
    eos_ids: frozenset[int]
    pad_id: int


def _context_len(config: Any, tokenizer: Any) -> int:
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    return 2048


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), model.config):
        value = getattr(source, "eos_token_id", None) if source is not None else None
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)


def resolve_dtype(dtype: str, device: str) -> Any:
    """``auto`` is float32 on CPU (exact, and fast everywhere) and the checkpoint's dtype on
    accelerators; ``bfloat16`` on a CPU with AVX512-BF16/AMX roughly halves decode time, at
    bf16's precision."""
    import torch

    if dtype == "auto":
        return torch.float32 if device == "cpu" else "auto"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"unknown dtype {dtype!r} (auto, float32, bfloat16, float16)")
    return getattr(torch, dtype)


def load_model(
    model_dir: Path,
    device: str = "cpu",
    chat_template: str | None = None,
    dtype: str = "auto",
) -> LoadedModel:
    """Load weights and tokenizer for inference, in the dtype ``resolve_dtype`` picks."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(find_tokenizer_dir(model_dir))
    if chat_template:
        tokenizer.chat_template = chat_template
    torch_dtype: Any = resolve_dtype(dtype, device)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype)
    model = model.to(device)  # type: ignore[arg-type]
    model.eval()
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        model_dir=model_dir,
        context_len=_context_len(model.config, tokenizer),
        eos_ids=_eos_ids(model, tokenizer),
        pad_id=int(pad),
    )


def longest_token_chars(tokenizer: Any) -> int:
    """No token decodes to more characters than its vocabulary entry has (byte-level BPE
    spells each byte as one character; SentencePiece spells a space as one)."""
    try:
        return max(8, *(len(t) for t in tokenizer.get_vocab()))
    except Exception:  # a tokenizer without a vocabulary listing: a generous bound
        return 256


def default_served_name(spec: str, model_dir: Path) -> str:
    """The name clients send: the registered model's, or the model folder's."""
    if is_registry_uri(spec):
        return spec.removeprefix("models:/").split("/")[0].split("@")[0]
    path = Path(spec)
    return path.name or model_dir.name


def _without_triton() -> None:
    """Serving on CPU runs eager PyTorch and never compiles a GPU kernel, yet transformers'
    model modules import ``torch._dynamo``, which imports Triton when it is installed
    (the CUDA wheels bring it): ~70 MB of resident library for nothing. Marking it absent
    before anything imports it makes ``torch.utils._triton.has_triton()`` false, as it is
    on any machine without a GPU anyway. Only the serving process calls this."""
    import sys

    if "triton" not in sys.modules:
        sys.modules["triton"] = None  # type: ignore[assignment]


def load_into(state: ServerState) -> None:
    """Load the model, start the engine, warm it up, then mark the state ready (blocking).

    Logs how long each phase took (a start from zero waits for all of them)."""
    import tempfile

    began = time.monotonic()
    if state.settings.device == "cpu":
        _without_triton()
    import torch

    from kubellm.serving.engine import Engine, EngineConfig

    imported = time.monotonic()
    s = state.settings
    download_dir = s.download_dir or Path(tempfile.mkdtemp(prefix="kubellm-model-"))
    model_dir = resolve_model_dir(s.model, s.tracking_uri, download_dir)
    loaded = load_model(model_dir, device=s.device, chat_template=s.chat_template, dtype=s.dtype)
    load_done = time.monotonic()
    engine = Engine(
        loaded.model,
        loaded.tokenizer,
        EngineConfig(
            max_batch_size=s.max_batch_size,
            max_queue=s.max_queue,
            max_step_tokens=s.max_step_tokens,
        ),
        context_len=loaded.context_len,
        eos_ids=loaded.eos_ids,
        pad_id=loaded.pad_id,
    )
    engine.start()
    started = time.monotonic()
    warm_ids = loaded.tokenizer("Hello")["input_ids"] or [loaded.pad_id]
    engine.generate(warm_ids, max_new_tokens=s.warmup_tokens, timeout=120)
    log.info(
        "model %s ready: torch import %.2fs, load %.2fs (architecture's modules included), "
        "warm-up %.2fs; process CPU %.2fs (%d torch threads, OMP_WAIT_POLICY=%s)",
        model_dir,
        imported - began,
        load_done - imported,
        time.monotonic() - started,
        time.process_time(),
        torch.get_num_threads(),
        os.environ.get("OMP_WAIT_POLICY", "unset"),
    )
    state.engine = engine
    state.context_len = loaded.context_len
    state.max_token_chars = longest_token_chars(loaded.tokenizer)
    if not state.served_name:
        state.served_name = default_served_name(s.model, model_dir)
    if state.status == "loading":
        state.status = "ready"
