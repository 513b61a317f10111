# Two entry points that work on a fresh machine: `make synth` and `make test`.
# Everything is installed into .venv/ and node_modules/ on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: synth test bench deps-synth deps-test postgres clean cost

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.synth-deps: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.test-deps: requirements.txt requirements-dev.txt executor/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.synth-deps

# checkov pins its own dependencies (boto3 among them), so it gets a virtualenv of its own.
.venv-checkov/bin/checkov: requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install -q --upgrade pip
	.venv-checkov/bin/python -m pip install -q -r requirements-checkov.txt
	touch $@

$(CDK): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

deps-synth: $(VENV)/.synth-deps $(CDK)
deps-test: $(VENV)/.test-deps .venv-checkov/bin/checkov $(CDK) postgres

# The end-to-end tests start a real PostgreSQL server; install it if the machine has none.
postgres:
	@bash scripts/ensure-postgres.sh

synth: deps-synth
	$(CDK) synth --quiet

test: deps-test
	$(PY) -m pytest

bench: $(VENV)/.test-deps
	$(PY) -m bench.run

clean:
	rm -rf cdk.out .pytest_cache

# The monthly cost of a configuration from its synthesized templates and cost/prices/<region>.json:
# make cost COST_ARGS='-c stage=prod --json'
cost: $(VENV)/.synth-deps
	@$(PY) -m cost $(COST_ARGS)
