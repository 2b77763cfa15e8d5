"""Pure builders of an LLM's child manifests.

Each function returns a plain manifest dict; nothing here talks to a server. Building is
separate from sending (style guide): the executor adds the owner reference and the
spec-hash annotation, then creates or patches. Containers run `kubellm <subcommand>`, the
one image's entrypoint; `OperatorConfig.command` lets the local demo run the same commands
as local processes.

One module per kind of child (`training`, `serving`, `loadtest`), with what they share in
`common`; this package re-exports the builders, so `from kubellm.operator.builders import
build_training_job` is the way to import them.
"""

from kubellm.operator.builders.common import owner_reference
from kubellm.operator.builders.loadtest import (
    build_loadtest_job,
    build_prompts_configmap,
    slo_argument,
)
from kubellm.operator.builders.serving import (
    INFLIGHT_METRIC,
    build_candidate_service,
    build_hpa,
    build_production_service,
    build_serving_deployment,
)
from kubellm.operator.builders.training import build_training_job, training_hash

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
