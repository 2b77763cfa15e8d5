"""The plan one Locust process follows, handed over as a JSON file.

Locust runs as a subprocess (its import monkey-patches the interpreter with gevent), and
with ``--workers`` as several. They all need the same knobs that Locust's own command line
does not have (request mix, prompts, warm-up, where to write the figures), so the runner
writes them to one file and points every process at it with ``KUBELLM_LOCUST_PLAN``.
The API key travels separately, in ``KUBELLM_LOCUST_API_KEY``, so it never lands on disk.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["API_KEY_ENV", "PLAN_ENV", "PROGRESS_PREFIX", "LocustPlan"]

PLAN_ENV = "KUBELLM_LOCUST_PLAN"
API_KEY_ENV = "KUBELLM_LOCUST_API_KEY"
# Lines the locustfile prints for the runner to turn into progress reports.
PROGRESS_PREFIX = "KUBELLM_PROGRESS "


@dataclass(frozen=True)
class LocustPlan:
    label: str
    model: str
    figures_path: str
    warmup_s: float = 0.0
    duration_s: float = 60.0
    prompts_file: str | None = None
    chat_ratio: float = 0.5
    stream_ratio: float = 0.5
    max_tokens: int = 32
    progress_interval_s: float = 5.0
    request_timeout_s: float = 60.0

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, path: Path) -> LocustPlan:
        return cls(**json.loads(path.read_text()))

    @classmethod
    def from_env(cls) -> LocustPlan:
        """The plan named by ``KUBELLM_LOCUST_PLAN``; defaults when Locust is run by hand."""
        path = os.environ.get(PLAN_ENV)
        if path:
            return cls.read(Path(path))
        return cls(label="adhoc", model="default", figures_path="figures.json")
