# The one list of developer commands. `make` alone shows them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
# sam build needs a python3.13 for the python3.13 runtime; pyenv holds one on the dev machines.
SAM_PYENV := $(if $(shell command -v pyenv 2>/dev/null),PYENV_VERSION=3.11.7:3.13.0,)

.PHONY: help install test demo lint format build deploy bench clean

help: ## Show the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(STAMP): requirements-dev.txt layers/transcode_core/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the dev requirements (skipped when up to date)

test: install ## Run all tests, then cfn-lint and sam validate --lint
	$(PY) -m pytest
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint

demo: install ## Run the local demo (simulated providers, moto AWS)
	$(PY) -m local.run

lint: install ## ruff check, ruff format --check, cfn-lint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/cfn-lint template.yaml

format: install ## Format and fix imports with ruff
	$(VENV)/bin/ruff check --fix --select I .
	$(VENV)/bin/ruff format .

build: install ## sam build (layer and functions for python3.13)
	$(SAM_PYENV) $(VENV)/bin/sam build

deploy: build ## sam deploy --guided
	$(VENV)/bin/sam deploy --guided

bench: install ## Benchmark all four providers (BENCH_JOBS=2000 ...; results in bench/results/)
	$(PY) -m bench

clean: ## Remove build output and caches (keeps .venv)
	rm -rf .aws-sam .pytest_cache .ruff_cache .benchmarks
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +
