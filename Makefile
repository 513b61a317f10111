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

.PHONY: synth test lint mypy bench bench-start cost deps-synth deps-test deps-ops postgres rehearsal-deps clean
.PHONY: rehearsal rehearsal-upgrade rehearsal-image-rollout rehearsal-git rehearsal-sso local local-down deploy destroy publish dags-check dags-test diff upgrade

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The CDK app imports the executor package's dependency-free modules (Fargate sizes, quotas, metric
# names: facts both sides must agree on), not Airflow: the package without its dependencies.
$(VENV)/.synth-deps: requirements.txt executor/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e ./executor
	touch $@

$(VENV)/.test-deps: requirements.txt requirements-dev.txt changes/requirements.txt executor/pyproject.toml operations/pyproject.toml cloud_assembly/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.synth-deps $(VENV)/.ops-deps

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
deps-test: $(VENV)/.test-deps .venv-checkov/bin/checkov $(CDK) postgres rehearsal-deps

# The end-to-end tests start a real PostgreSQL server; install it if the machine has none.
postgres:
	@bash scripts/ensure-postgres.sh

# The rehearsal tests build and run the images with podman (Debian's podman runc mmdebstrap chromium).
rehearsal-deps:
	@bash scripts/ensure-rehearsal-deps.sh

synth: deps-synth
	$(CDK) synth --quiet

# Static checks, before the tests: ruff (ruff.toml) and a dead-code pass over the packages
# (vulture; vulture_whitelist.py names what only a framework calls) and mypy (mypy.ini) over the same
# packages; `make mypy` runs mypy alone.
LINT_PACKAGES := app_config executor/airflow_ecs_fargate operations/airflow_ecs_ops changes cost cloud_assembly standins
lint: $(VENV)/.test-deps
	$(PY) -m ruff check .
	$(PY) -m vulture $(LINT_PACKAGES) vulture_whitelist.py --min-confidence 80
	$(PY) -m mypy $(LINT_PACKAGES)

mypy: $(VENV)/.test-deps
	$(PY) -m mypy $(LINT_PACKAGES)

# The upgrade and image-rollout rehearsals are left out (docs/rehearsal.md, "Upgrade and image
# rollout"): make rehearsal-upgrade and make rehearsal-image-rollout run them.
test: deps-test lint
	$(PY) -m pytest -m "not rollout_rehearsal"

bench: $(VENV)/.test-deps
	$(PY) -m bench.run

# The worker's start overhead and image size, before (main) and after (the work tree), with podman
# (docs/worker-start.md); BENCH_START_ARGS e.g. '--runs 9 --before 14ae7ef'.
bench-start: $(VENV)/.test-deps rehearsal-deps
	$(PY) -m bench.worker_start $(BENCH_START_ARGS)

clean:
	rm -rf cdk.out .pytest_cache

# The rehearsal (docs/rehearsal.md): the synthesized task definitions run as ECS would, with podman,
# moto (IAM enforced) and TLS-only PostgreSQL; writes .rehearsal/report.json and a screenshot.
rehearsal: deps-test
	$(PY) -m pytest -m rehearsal tests/rehearsal -q

# The upgrade rehearsal (docs/rehearsal.md): Airflow 3.2.2 -> 3.3.2 with the operations CLI's
# orchestrator while a DAG's tasks run, then the rollback; writes .rehearsal/upgrade-report.json.
rehearsal-upgrade: deps-test
	$(PY) -m pytest tests/rehearsal/test_upgrade.py -q

# The image-only rollout (new DAG code, same Airflow); writes .rehearsal/image-rollout-report.json.
rehearsal-image-rollout: deps-test
	$(PY) -m pytest tests/rehearsal/test_image_rollout.py -q

# The git DAG bundle and a private package index (docs/rehearsal.md): a real git server (HTTPS, basic
# auth) and pypiserver on this machine, a push during a run; writes .rehearsal/report-git.json.
# Also part of make rehearsal and make test (marker rehearsal).
rehearsal-git: deps-test
	$(PY) -m pytest tests/rehearsal/test_git_bundle.py -q

# Single sign-on (docs/rehearsal.md): domain_name and the sso_* keys, the HTTPS listener, a real
# OpenID Connect provider on this machine and Chromium; writes .rehearsal/report-sso.json.
# Also part of make rehearsal and make test (marker rehearsal).
rehearsal-sso: deps-test
	$(PY) -m pytest tests/rehearsal/test_sso_rehearsal.py -q

# A local Airflow from the same templates as production; prints the UI URL and the admin password.
# dags/ is mounted into every container (not baked): an edit is parsed within seconds, no rebuild.
local: deps-test
	$(CDK) synth --quiet -o .rehearsal/cdk.out $(CDK_ARGS)
	$(PY) -m local_ecs up .rehearsal/cdk.out $(if $(findstring dag_bundle=s3,$(CDK_ARGS)),--dags dags,--dags-mount dags)

local-down:
	$(PY) -m local_ecs down

# --- Writing DAGs (README "Writing DAGs") ------------------------------------------------------
# Import every DAG of DAGS (dags/, or the folder an S3 bundle uploads) with the image's Airflow and
# packages; queues from cdk.json and the -c options of CDK_ARGS. make deploy and publish run it first.
DAGS ?= dags
dags-check: export CDK_ARGS := $(CDK_ARGS)
dags-check: $(VENV)/.test-deps
	$(PY) -m dag_checks check $(DAGS)

# The DAG author's tests (tests/dags/): an integrity test over dags/ and a dag.test() run.
dags-test: $(VENV)/.test-deps
	$(PY) -m pytest tests/dags -q

# --- Deploy, publish, destroy (README "Operating") ---------------------------------------------
# Extra CDK options pass through CDK_ARGS: make deploy CDK_ARGS='-c stage=prod -c region=eu-west-1'.
# The operations CLI (airflow-ecs, operations/) gets the same project, stage and region from them.
CDK_ARGS ?=
OPS := $(VENV)/bin/airflow-ecs
cdk_context = $(patsubst $(1)=%,%,$(filter $(1)=%,$(CDK_ARGS)))
OPS_ARGS = $(if $(call cdk_context,project_name),--project $(call cdk_context,project_name)) \
	$(if $(call cdk_context,stage),--stage $(call cdk_context,stage)) \
	$(if $(call cdk_context,region),--region $(call cdk_context,region))

# The CLI reads cdk.out and names the stacks with cloud_assembly/ (standard library only).
$(VENV)/.ops-deps: operations/pyproject.toml cloud_assembly/pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e ./cloud_assembly -e ./operations
	touch $@

deps-ops: $(VENV)/.ops-deps

# The cloud assembly that make diff and make deploy check (and deploy).
CDK_OUT ?= cdk.out

# The change check (changes/) reads cfn-lint's registry schemas.
$(VENV)/.changes-deps: changes/requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r changes/requirements.txt
	touch $@

# What a deploy of the current configuration would do to the deployed stacks: the change check's
# report, then CDK's own diff (which reads the deployed stacks: skipped without credentials).
diff: deps-synth deps-ops $(VENV)/.changes-deps
	$(CDK) synth --quiet -o $(CDK_OUT) $(CDK_ARGS)
	-$(PY) -m changes check-deployed --cdk-out $(CDK_OUT) --report-only
	@if $(PY) -c 'import boto3, sys; sys.exit(0 if boto3.Session().get_credentials() else 1)'; then \
		$(CDK) diff --all --app $(CDK_OUT); \
	else echo "cdk diff skipped: no AWS credentials (it compares with the deployed stacks)"; fi

# The DAG check, then synthesize; then credentials, region, CDK bootstrap and whether a database
# that office hours stopped can take the change (else offer to wake it); then the change check (it
# refuses data loss and known deploy failures; ALLOW_REPLACE=<logical id>[,...] accepts a
# replacement on purpose); then every stack from the same synthesized templates (the image is
# built with Docker).
deploy: deps-synth deps-ops $(VENV)/.changes-deps dags-check
	$(CDK) synth --quiet -o $(CDK_OUT) $(CDK_ARGS)
	$(OPS) $(OPS_ARGS) preflight --assembly $(CDK_OUT) $(if $(call cdk_context,account),--account $(call cdk_context,account))
	$(PY) -m changes check-deployed --cdk-out $(CDK_OUT) $(if $(ALLOW_REPLACE),--allow-replace $(ALLOW_REPLACE))
	$(CDK) deploy --all --app $(CDK_OUT) $(CDK_ARGS)

# An image rollout or an Airflow upgrade (README "Upgrading", docs/upgrading.md): make deploy's
# checks, then airflow-ecs upgrade deploys the same assembly; with a new schema it stops the
# services, snapshots the database, migrates once and starts them again. UPGRADE_ARGS passes
# options: make upgrade UPGRADE_ARGS='--drain-timeout 1800 --report upgrade.json'.
upgrade: deps-synth deps-ops $(VENV)/.changes-deps dags-check
	$(CDK) synth --quiet -o $(CDK_OUT) $(CDK_ARGS)
	$(OPS) $(OPS_ARGS) preflight --assembly $(CDK_OUT) $(if $(call cdk_context,account),--account $(call cdk_context,account))
	$(PY) -m changes check-deployed --cdk-out $(CDK_OUT) $(if $(ALLOW_REPLACE),--allow-replace $(ALLOW_REPLACE))
	$(OPS) $(OPS_ARGS) upgrade --assembly $(CDK_OUT) --cdk $(CDK) $(UPGRADE_ARGS)

# Build the staged image and push it into the app's ECR repository: tag git-<commit> (dev) or
# VERSION (a semantic version, required in prod); then make deploy CDK_ARGS='-c image_tag=<tag>'.
publish: deps-synth deps-ops dags-check
	$(CDK) synth --quiet $(CDK_ARGS)
	$(OPS) $(OPS_ARGS) publish $(if $(VERSION),--version $(VERSION)) $(if $(ENGINE),--engine $(ENGINE))

# The Airflow stack first (its scheduler stops), then the worker tasks the executor left running
# (they hold network interfaces in the VPC), then the rest.
destroy: deps-synth deps-ops
	$(CDK) destroy Airflow $(CDK_ARGS)
	$(OPS) $(OPS_ARGS) stop-workers --missing-ok
	$(CDK) destroy --all $(CDK_ARGS)

# The monthly cost of a configuration from its synthesized templates and cost/prices/<region>.json:
# make cost COST_ARGS='-c stage=prod --json'
cost: $(VENV)/.synth-deps
	@$(PY) -m cost $(COST_ARGS)
