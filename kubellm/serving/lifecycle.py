"""The server's settings and the model's lifecycle, shared by the routes, the loader and
the shutdown path.

A model is loading, then ready (loaded and warmed up), then draining on SIGTERM; or it
failed to load. ``ServerState`` holds that one status, the engine once there is one, and
the limits derived from the model, so that ``/healthz``, ``/readyz``, the routes and the
draining server all read the same truth.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubellm.serving.engine import Engine

__all__ = ["ServerSettings", "ServerState"]


@dataclass(frozen=True)
class ServerSettings:
    model: str
    served_model_name: str | None = None
    max_batch_size: int = 32
    max_queue: int = 256
    max_step_tokens: int = 256
    max_new_tokens: int = 512
    max_prompt_tokens: int | None = None
    api_key: str | None = None
    chat_template: str | None = None
    device: str = "cpu"
    dtype: str = "auto"
    tracking_uri: str | None = None
    download_dir: Path | None = None
    shutdown_grace: float = 30.0
    # Tokens the warm-up generates before the server turns ready: two run one prefill
    # step and one decode step, the two paths every request takes.
    warmup_tokens: int = 2
    # Largest request body; None: derived from the prompt limit (see body_limit).
    max_body_bytes: int | None = None
    # Non-streamed requests are cancelled after this long (streams end when clients go).
    request_timeout: float = 600.0


@dataclass
class ServerState:
    """The model's lifecycle, shared by the routes, the loader and the shutdown path."""

    settings: ServerSettings
    status: str = "loading"  # loading | ready | draining | failed
    engine: Engine | None = None
    served_name: str = ""
    context_len: int = 0
    created: int = field(default_factory=lambda: int(time.time()))
    error: str | None = None
    inflight: int = 0
    max_token_chars: int = 64  # longest token of the vocabulary, in characters

    @property
    def ready(self) -> bool:
        return self.status == "ready" and self.engine is not None and self.engine.alive

    def prompt_token_limit(self) -> int:
        """The most prompt tokens a request may have: the flag, else the model's context."""
        return self.settings.max_prompt_tokens or self.context_len or 32768

    def body_limit(self) -> int:
        """Request bodies above this are refused unread: 32 bytes per allowed prompt token
        (JSON-escaped text stays well below it) plus 64 KiB for the rest of the request."""
        return self.settings.max_body_bytes or self.prompt_token_limit() * 32 + 65536
