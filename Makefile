# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_ENV := HF_HUB_OFFLINE=1 MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1

.PHONY: venv demo test lint typecheck crd clean realkube

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: the CPU build on disk; an unpinned torch would pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -m kubellm.tools.binaries ensure
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/kubellm demo --once

test: $(STAMP)
	$(BIN)/ruff check kubellm tests bench
	$(BIN)/ruff format --check kubellm tests bench
	$(BIN)/mypy kubellm
	@if command -v go >/dev/null 2>&1; then tools/realkube/build.sh; \
	else echo "realkube: no Go toolchain: the real control plane cannot be built;" \
	  "the e2e suite on kube-apiserver will be SKIPPED"; fi
	$(TEST_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider tests
	@if [ -x "$$(tools/realkube/build.sh --print-bin 2>/dev/null)/kube-apiserver" ]; then \
	  echo "e2e suite again, on a real control plane (KUBELLM_E2E_CLUSTER=real)"; \
	  KUBELLM_E2E_CLUSTER=real $(TEST_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e; \
	else echo "SKIPPED: the e2e suite on a real control plane (no binaries; run make realkube)"; \
	  test -z "$$KUBELLM_REQUIRE_REAL_E2E" || { echo "KUBELLM_REQUIRE_REAL_E2E is set: failing"; exit 1; }; fi

# kube-apiserver, controller-manager, scheduler and etcd from the Kubernetes Go modules,
# built once into ~/.cache/kubellm/realkube/<version>/bin (a cold build takes tens of minutes).
realkube:
	tools/realkube/build.sh

lint: $(STAMP)
	$(BIN)/ruff check kubellm tests bench
	$(BIN)/ruff format --check kubellm tests bench

typecheck: $(STAMP)
	$(BIN)/mypy kubellm

crd: $(STAMP)
	$(BIN)/kubellm crd > charts/kubellm/crds/llms.kubellm.dev.yaml

clean:
	rm -rf $(VENV) build *.egg-info
