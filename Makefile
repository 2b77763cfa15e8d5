# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint typecheck crd clean realkube

# Two distributions: the product (kubellm) and localkube, its local Kubernetes and test
# fixtures (localkube/), both editable.
$(STAMP): pyproject.toml localkube/pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: the CPU build on disk; an unpinned torch would pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]' -e ./localkube
	$(BIN)/python -m kubellm.tools.binaries ensure
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/kubellm demo --once

test: $(STAMP)
	$(BIN)/ruff check kubellm localkube tests bench setup.py
	$(BIN)/ruff format --check kubellm localkube tests bench setup.py
	$(BIN)/mypy kubellm localkube/src
	@if command -v go >/dev/null 2>&1; then tools/realkube/build.sh; \
	else echo "realkube: no Go toolchain: the real control plane cannot be built;" \
	  "the e2e suite on kube-apiserver will be SKIPPED"; fi
	tools/test.sh

# kube-apiserver, controller-manager, scheduler and etcd from the Kubernetes Go modules,
# built once into ~/.cache/kubellm/realkube/<version>/bin (a cold build takes tens of minutes).
realkube:
	tools/realkube/build.sh

lint: $(STAMP)
	$(BIN)/ruff check kubellm localkube tests bench setup.py
	$(BIN)/ruff format --check kubellm localkube tests bench setup.py

typecheck: $(STAMP)
	$(BIN)/mypy kubellm localkube/src

crd: $(STAMP)
	$(BIN)/kubellm crd > charts/kubellm/crds/llms.kubellm.dev.yaml

clean:
	rm -rf $(VENV) build *.egg-info localkube/build localkube/src/*.egg-info
