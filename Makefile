# The one list of developer commands. `make` alone shows them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# uv installs (its resolver and parallel downloads take seconds where pip's take minutes); pip only installs uv.
UV_INSTALL := $(UV) pip install --quiet --python $(PY)
# Two stages: `make demo` needs the runtime, moto and the simulators' few packages (requirements-demo.txt);
# the tests and linters add the rest (requirements-dev.txt), and checkov its own venv.
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed
# checkov lives in a venv of its own: it pins boto3/botocore to versions older than the ones the tests use.
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
export SAM_CLI_TELEMETRY := 0
# sam build needs a python3.13 for the python3.13 runtime: the one on PATH, else the newest 3.13.x pyenv holds
# (whatever pyenv's current version is). Its directory goes first on sam's PATH.
PYTHON313 := $(shell for candidate in "$$(command -v python3.13)" \
	$$(ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.13*/bin/python3.13 2>/dev/null | sort -rV); do \
	test -n "$$candidate" && "$$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13); print(sys.executable)' \
	2>/dev/null && break; done)
WITH_PYTHON313 = $(if $(PYTHON313),PATH="$(dir $(PYTHON313)):$$PATH",$(error sam build needs a python3.13: install one \
	(python.org, your package manager, or pyenv install 3.13) and put it on PATH))
LAYER := layers/transcode_core
LOCKED := $(LAYER)/requirements.txt $(LAYER)/requirements.lock pyproject.toml
# pytest's workers: one per core (pytest-xdist); PYTEST_WORKERS=0 runs the tests in this process. A file's tests
# stay on one worker (--dist loadfile): a module's fixtures (a local stack, a moto server) start once.
PYTEST_WORKERS ?= auto

.PHONY: help install install-demo test check-fast soak demo lint format build invoke deploy bench bench-imports lock clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

$(UV):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --quiet --disable-pip-version-check uv

# Each stage installs its requirements and the CLI (pip install -e .), then the layer's locked versions over
# them (hash-checked), so everything imports what the layer ships, even where a dev tool pins a package more
# tightly (aws-sam-cli: requests, jmespath; it runs fine with the lock's).
define install_with_lock
	$(UV_INSTALL) -r $(1) -e .
	$(UV_INSTALL) --no-deps --require-hashes -r $(LAYER)/requirements.lock
endef

$(DEMO_STAMP): requirements-demo.txt $(LOCKED) | $(UV)
	$(call install_with_lock,requirements-demo.txt)
	@touch $(DEMO_STAMP)

$(STAMP): requirements-dev.txt $(DEMO_STAMP)
	$(call install_with_lock,requirements-dev.txt)
	@touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt | $(UV)
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(CHECKOV_VENV)
	$(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python -r requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

install: $(STAMP) $(CHECKOV_STAMP) ## Create .venv, install the dev requirements and the CLI (.venv/bin/transcode-status)

install-demo: $(DEMO_STAMP) ## Create .venv with only what `make demo` needs (the runtime, moto, the CLI)

test: install build ## sam build, all tests (the built functions and cfn-lint too), sam validate --lint, checkov
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile
	$(VENV)/bin/sam validate --lint
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download

# The per-provider handler and API flows are left to `make test`: the core's flows (store, pipeline, outbox,
# faults, webhooks) run here for every provider's code.
check-fast: $(STAMP) ## The inner loop: ruff, then the tests but the built functions, the slow ones and the per-provider flows
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	FUZZ_EXAMPLES=10 $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not artifact and not slow" \
		--ignore-glob='tests/integration/test_*_handler.py' --ignore-glob='tests/integration/test_*_api.py'

# The fault simulation (tests/simulation/) on new seeds for SOAK_MINUTES; SIM_SEED=<seed> replays that run
# (SIM_PROVIDER=<id>[,<id>] to one provider; SIM_BUS=0 or 1 to the bus off or on, else both). A violation is
# shrunk and printed with its seed and steps.
SOAK_MINUTES ?= 10
soak: $(STAMP) ## The pipeline under faults, new seeds for SOAK_MINUTES (10); SIM_SEED=n SIM_PROVIDER=id replays one
	SOAK_MINUTES=$(if $(SIM_SEED),0,$(SOAK_MINUTES)) $(PY) -m pytest tests/simulation/test_simulation.py::test_soak -q -s

demo: $(DEMO_STAMP) ## Run the local demo (simulated providers, moto AWS); ARGS=--keep-running keeps it up for the CLI
	$(PY) -m local.run $(ARGS)

lint: $(STAMP) ## ruff check, ruff format --check, cfn-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/cfn-lint template.yaml

format: $(STAMP) ## Format and fix imports with ruff
	$(VENV)/bin/ruff check --fix --select I .
	$(VENV)/bin/ruff format .

build: $(STAMP) ## sam build (layer and functions for python3.13)
	$(WITH_PYTHON313) $(VENV)/bin/sam build

# The layer's requirements.lock, resolved for the python3.13 arm64 runtime with hashes, leaving out what the
# runtime ships ($(LAYER)/lambda-runtime.txt). Keeps current pins that still fit; UPGRADE=1 takes the newest.
lock: $(STAMP) ## Re-resolve the layer's requirements.lock from its requirements.txt (UPGRADE=1 for newest)
	$(VENV)/bin/uv pip compile --quiet $(LAYER)/requirements.txt -o $(LAYER)/requirements.lock \
		--generate-hashes --python-version 3.13 --python-platform aarch64-manylinux2014 \
		--custom-compile-command "make lock" -c $(LAYER)/lambda-runtime.txt $(if $(UPGRADE),--upgrade) \
		$(foreach name,$(shell sed -E 's/#.*//; s/[<>=!~ ].*//' $(LAYER)/lambda-runtime.txt),--no-emit-package $(name))

invoke: $(STAMP) ## Run a built function like Lambda: FUNCTION=<LogicalId> EVENT=events/<file>.json [ARGS=--aws]
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=EncodingComFunction EVENT=events/schedule.json [ARGS=--aws]"; exit 2; }
	@test -f .aws-sam/build/template.yaml || $(MAKE) --no-print-directory build
	$(PY) -m local.artifact $(FUNCTION) $(EVENT) $(ARGS)

deploy: build ## sam deploy --guided
	$(VENV)/bin/sam deploy --guided

bench: $(STAMP) build ## Benchmark all four providers (BENCH_JOBS=2000 ... ARGS="--providers xvid", "--memory 10000"; results in bench/results/)
	$(PY) -m bench $(ARGS)

bench-imports: build ## Cold import of each built function vs `import boto3`, in a python3.13 runtime emulation
	$(WITH_PYTHON313) $(PY) -m bench.imports --check

clean: ## Remove build output and caches (keeps .venv)
	rm -rf .aws-sam .pytest_cache .ruff_cache .benchmarks
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
