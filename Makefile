# sensorhook — the project's vocabulary. Every target installs what it needs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
STAGE ?= dev
LOCAL_API_PORT ?= 8080
LOCAL_AWS_PORT ?= 5000

.PHONY: help venv demo local test test-fast lint format synth bench bench-forwarding deploy replay-quarantine clean soak faults

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	# functions/ holds the Lambda package `sensorhook`; make it importable from the venv
	echo "$(CURDIR)/functions" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/sensorhook-functions.pth"
	# the operator CLI: .venv/bin/sensorhook (cli/), editable, dependencies pinned above
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv with every Python dependency

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)  ## run the whole flow locally on an embedded AWS and check what landed
	$(PY) -m local.demo

local: $(STAMP)  ## keep the local stack running for your own requests (Ctrl-C to stop)
	$(PY) -m local.sandbox --api-port $(LOCAL_API_PORT) --aws-port $(LOCAL_AWS_PORT)

DURATION ?= 1800
RATE ?= 5
soak: $(STAMP)  ## the local stack under steady traffic: RSS, req/s, retained logs (DURATION=s RATE=req/s)
	$(PY) -m local.soak --duration $(DURATION) --rate $(RATE)

SHARE ?= 0.10
faults: $(STAMP)  ## the demo's traffic with SHARE of the functions' AWS calls failing: lost, doubled, DLQ'd
	$(PY) -m local.faults --share $(SHARE)

test: $(STAMP)  ## every test: unit, integration, infrastructure, end-to-end
	$(PY) -m pytest -n 2 --dist loadfile

test-fast: $(STAMP)  ## unit tests only
	$(PY) -m pytest tests/unit -q

lint: $(STAMP)  ## ruff (lint + format check) and mypy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy functions infra local cli app.py bench

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

synth: $(STAMP)  ## synthesize the CloudFormation template offline into cdk.out/
	$(PY) app.py -c stage=$(STAGE)
	@ls cdk.out/*.template.json

bench: $(STAMP)  ## print CPU, cold imports and $ per delivery (AWS calls x list prices) beside their floors
	$(PY) -m bench

bench-forwarding: $(STAMP)  ## forwarding on the local sandbox: deliveries/s, added latency, transitions per incident
	$(PY) -m bench.forwarding

deploy: $(STAMP) node_modules/.installed  ## cdk deploy to your AWS account (STAGE=dev|prod)
	npx cdk deploy --no-notices -c stage=$(STAGE)

replay-quarantine: $(STAMP)  ## alias of `sensorhook replay quarantine` (ARGS="--dry-run --flavor …")
	$(VENV)/bin/sensorhook replay quarantine $(ARGS)

clean:  ## remove generated files (keeps .venv)
	rm -rf cdk.out .local .pytest_cache .mypy_cache .ruff_cache
