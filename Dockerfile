# syntax=docker/dockerfile:1
#
# One image for every kubellm pod: the operator, training Jobs, serving Deployments and
# load-test Jobs all run `kubellm <command>` from it.
#
# CPU (default):
#   docker build -t ghcr.io/kubellm/kubellm:0.1.0 .
# CUDA (torch's CUDA wheels on an NVIDIA runtime base; the host needs an NVIDIA driver that
# supports the CUDA version):
#   docker build -t ghcr.io/kubellm/kubellm:0.1.0-cuda \
#     --build-arg BASE=nvidia/cuda:12.8.1-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
#
# The pods run it as uid 10001 with a read-only root filesystem and an emptyDir at /tmp, so
# every cache points under /tmp.

ARG BASE=python:3.11-slim
FROM ${BASE}

# torch is installed first, from TORCH_INDEX: left to resolve as a dependency of `.`, pip
# would pick PyPI's default build (CUDA on Linux) even for the CPU image.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/kubellm \
    PATH=/opt/kubellm/bin:$PATH \
    XDG_CACHE_HOME=/tmp/.cache \
    HF_HOME=/tmp/huggingface \
    MPLCONFIGDIR=/tmp/matplotlib \
    TRITON_CACHE_DIR=/tmp/triton \
    MLFLOW_DISABLE_TELEMETRY=true

# The python:* bases carry Python; CUDA bases (Ubuntu 24.04: Python 3.12) need it installed.
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv "$VIRTUAL_ENV" \
    && pip install --upgrade pip \
    && pip install --index-url "$TORCH_INDEX" "torch==$TORCH_VERSION"

# The product only: localkube (localkube/, the local Kubernetes and test fixtures) stays out,
# and so does setup.py, which copies the chart and examples into wheels for `kubellm demo`
# (a laptop command, not one a pod runs).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kubellm ./kubellm
RUN pip install . && rm -rf /src

RUN groupadd --system --gid 10001 kubellm \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/kubellm --create-home \
        --shell /usr/sbin/nologin kubellm

USER 10001:10001
WORKDIR /home/kubellm

LABEL org.opencontainers.image.title="kubellm" \
      org.opencontainers.image.description="Kubernetes operator that trains, load-tests and serves LLMs" \
      org.opencontainers.image.source="https://github.com/kubellm/kubellm" \
      org.opencontainers.image.licenses="Apache-2.0"

ENTRYPOINT ["kubellm"]
CMD ["--help"]
