"""`spec.model` and `spec.mlflow`: which registered model an LLM owns, and where the registry is.

The tracking URI rules are strict on purpose: every pod of the LLM must reach the same
registry, and a spec is readable by anyone who can list LLMs, so credentials go in
Secrets, never in the URI.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from kubellm.api.spec.fields import DNS_LABEL_PATTERN, SpecModel, cel, cel_string

__all__ = [
    "REGISTERED_MODEL_PATTERN",
    "MlflowSpec",
    "ModelSpec",
]

REGISTERED_MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"

# MLflow tracking URIs that every pod of an LLM can use: an http(s) server with a host (and
# no credentials: those belong in credentialsSecret, since a spec is readable by anyone who
# can list LLMs), or a file store on a local path (a volume shared by the pods).
TRACKING_URI_SCHEME_PATTERN = r"^(https?|file):"
HTTP_URI_PATTERN = (
    r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)(:[0-9]{1,5})?"
    r"([/?#]\S*)?$"
)
FILE_URI_PATTERN = r"^file:(//(localhost)?)?/([^/\s]\S*)?$"  # file:/p, file:///p
TRACKING_URI_SCHEME_MESSAGE = (
    "must be an http, https or file URI, e.g. http://mlflow.mlflow.svc:5000 or file:///mlruns"
)
HTTP_URI_MESSAGE = (
    "an http(s) URI needs a host (and an optional port) and no user or password: "
    "put credentials in credentialsSecret"
)
FILE_URI_MESSAGE = "a file URI needs an absolute local path, e.g. file:///mlruns"


class ModelSpec(SpecModel):
    registered_model: str = Field(
        pattern=REGISTERED_MODEL_PATTERN,
        min_length=1,
        max_length=128,
        description=(
            "Name of the registered model in the MLflow model registry. Training registers "
            "new versions under it; the rollout aliases (candidate, production) live on it."
        ),
    )
    base: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description=(
            "Base weights for fine-tuning (training.method full or lora): a registry URI "
            "(models:/name/3, models:/name@production), a local directory, or a Hugging Face "
            "hub id (needs network access from the training pod)."
        ),
    )
    architecture: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description=(
            "Architecture to pre-train from scratch (training.method pretrain): a preset name "
            "such as gpt2-tiny, or the path of a transformers config JSON."
        ),
    )


class MlflowSpec(SpecModel):
    tracking_uri: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description=(
            "MLflow tracking server (http or https, credentials in credentialsSecret) or "
            "file store (file:///path on a volume every pod mounts); default: the "
            "operator's configured URI."
        ),
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"self.matches({cel_string(TRACKING_URI_SCHEME_PATTERN)})",
                    TRACKING_URI_SCHEME_MESSAGE,
                ),
                cel(
                    f"!self.matches('^https?:') || self.matches({cel_string(HTTP_URI_PATTERN)})",
                    HTTP_URI_MESSAGE,
                ),
                cel(
                    f"!self.startsWith('file:') || self.matches({cel_string(FILE_URI_PATTERN)})",
                    FILE_URI_MESSAGE,
                ),
            ]
        },
    )
    credentials_secret: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description=(
            "Default Secret whose keys (MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD or "
            "MLFLOW_TRACKING_TOKEN) become MLflow environment variables of the containers that "
            "talk to the registry: training, the model download before serving, the load test. "
            "The serving container never receives it. The three fields below give each of "
            "those its own, narrower credentials."
        ),
    )
    training_credentials_secret: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description=(
            "Credentials of the training pods (default: credentialsSecret): they log a run, "
            "register a version and move the candidate alias (MLflow EDIT on the registered "
            "model and the experiment)."
        ),
    )
    model_reader_credentials_secret: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description=(
            "Credentials of the init container that downloads a version into each serving pod "
            "(default: credentialsSecret); READ on the registered model is enough."
        ),
    )
    load_test_credentials_secret: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description=(
            "Credentials of the load-test pods (default: credentialsSecret): they log a run and "
            "write kubellm.loadtest.* tags on the version under test (MLflow EDIT)."
        ),
    )

    @field_validator("tracking_uri")
    @classmethod
    def _tracking_uri_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.match(TRACKING_URI_SCHEME_PATTERN, value):
            raise ValueError(f"{TRACKING_URI_SCHEME_MESSAGE} (got {value!r})")
        if re.match("^https?:", value) and not re.fullmatch(HTTP_URI_PATTERN, value):
            shown = re.sub(r"//[^/?#]*@", "//***@", value)  # never echo a password
            raise ValueError(f"{HTTP_URI_MESSAGE} (got {shown!r})")
        if value.startswith("file:") and not re.fullmatch(FILE_URI_PATTERN, value):
            raise ValueError(f"{FILE_URI_MESSAGE} (got {value!r})")
        return value
