# Every target sets itself up: a fresh machine needs nothing but python3 (>= 3.11) and make.
PYTHON ?= python3
# The repository root, wherever make runs from (sam build runs the build-* targets in a scratch copy of the sources).
ROOT := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_VERSION := 1.170.0
SAM_ENV := SAM_CLI_TELEMETRY=0
SAM_BUILD_DIR ?= .aws-sam/build
STACK ?= kaltura-automations
SAMCONFIG ?= samconfig.toml
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help venv browser lint typecheck template-check checkov test unit integration demo serve bench build deploy smoke \
	clean config-docs

help:
	@echo "make demo            run the pipeline on the embedded local stack (moto + Kaltura simulator)"
	@echo "make config-docs     regenerate the README's configuration tables from the schemas"
	@echo "make serve           keep the local stack up for curl or a real Kaltura (KALTURA_* env vars; dry run)"
	@echo "make test            lint, type check, template checks, checkov and the whole test suite"
	@echo "make checkov         scan template.yaml with checkov (skips and reasons: .checkov.yaml)"
	@echo "make bench           run the benchmarks and print their figures"
	@echo "make build           build the layer and functions for Lambda (python3.13 arm64) into .aws-sam/build"
	@echo "make deploy          build, then sam deploy (guided the first time; then from samconfig.toml)"
	@echo "make smoke STACK=..  check a deployed stack end to end (signed test notification, alarms, queues, schedules)"
	@echo "make browser         install Debian's chromium for the page tests (headless; skipped where it cannot be)"
	@echo "make clean           remove virtualenvs and caches"

$(BIN)/.installed: pyproject.toml
	@echo "Creating $(VENV) with the project and its dev tools (about 30 s, once)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed:
	@echo "Installing the AWS SAM CLI $(SAM_VERSION) into $(SAM_VENV) (about a minute, once)"
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_VERSION)
	touch $@

# Its own venv: checkov pins dependencies (boto3, pydantic ...) the project's venv must not be tied to.
$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	@echo "Installing checkov $(CHECKOV_VERSION) into $(CHECKOV_VENV) (once; about a minute)..."
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

venv: $(BIN)/.installed

# The pages people look at (weekly digest, session summary) are tested in headless Chromium (tests/browser.py).
browser:
	@if command -v chromium >/dev/null 2>&1; then \
		echo "chromium: $$(chromium --version 2>/dev/null)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "Installing Debian's chromium for the page tests (apt-get; takes a minute or two)..."; \
		( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ) \
			&& echo "chromium installed: $$(chromium --version 2>/dev/null)" \
			|| echo "chromium could not be installed: the page tests will be skipped"; \
	else \
		echo "chromium is not installed and apt-get needs root: the page tests will be skipped"; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy
	@for handler in functions/*/app.py; do $(BIN)/mypy "$$handler" || exit 1; done

template-check: venv $(SAM_VENV)/.installed
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --template template.yaml --region $(AWS_DEFAULT_REGION)

unit: venv browser
	$(BIN)/pytest tests/unit tests/template

integration: venv
	$(BIN)/pytest tests/integration

# Skips and their reasons: .checkov.yaml, and Metadata (checkov: skip) of single resources in template.yaml.
checkov: $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
	@echo "checkov: template.yaml (about 20 s)"
	@# No network: skip the download of Prisma Cloud guideline links.
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --file template.yaml

test: lint typecheck template-check checkov browser
	$(BIN)/pytest -n 2

demo: venv
	$(BIN)/python -m kauto_local.demo

config-docs: venv
	$(BIN)/python -m kauto_ops.config_docs README.md

serve: venv
	$(BIN)/python -m kauto_local.serve

bench: venv
	$(BIN)/python benchmarks/run_all.py

# ---------------------------------------------------------------- build and deploy
# Every function and the layer use BuildMethod: makefile (template.yaml), so sam build never looks for a Python 3.13 on
# PATH: it runs the build-<LogicalId> targets below with ARTIFACTS_DIR set, in a copy of the resource's source folder.
# SAM looks for the Makefile in each resource's CodeUri folder unless its Metadata's ContextPath names another folder:
# ContextPath ./ keeps this one Makefile instead of a copy in each shipped folder. tools/lambda_build.py fetches the
# layer's wheels for python3.13 arm64 and compiles bytecode when this machine has a Python 3.13 (it says when not).
# make deploy deploys .aws-sam/build; SAM_BUILD_DIR only lets the artifact tests build elsewhere.
build: venv $(SAM_VENV)/.installed
	@echo "sam build: layer and functions for python3.13 arm64 into $(SAM_BUILD_DIR) (about a minute the first time)"
	$(SAM_ENV) $(SAM) build --build-dir $(SAM_BUILD_DIR)

build-SharedLayer:
	$(ROOT)$(BIN)/python $(ROOT)tools/lambda_build.py layer . "$(ARTIFACTS_DIR)"

build-%Function:
	$(ROOT)$(BIN)/python $(ROOT)tools/lambda_build.py function . "$(ARTIFACTS_DIR)"

# Guided the first time (it asks for the partner secret's ARN and saves the answers in samconfig.toml), then
# unattended from samconfig.toml. The README's deploy section walks through every prompt.
deploy: build
	@if grep -q '^parameter_overrides' $(SAMCONFIG); then \
		echo "sam deploy with the answers saved in $(SAMCONFIG) (delete its parameter_overrides line to be asked again)"; \
		$(SAM_ENV) $(SAM) deploy --config-file $(SAMCONFIG); \
	else \
		echo "sam deploy --guided: first deploy, see the README's deploy section for each answer"; \
		$(SAM_ENV) $(SAM) deploy --guided --config-file $(SAMCONFIG); \
	fi

smoke: venv
	$(BIN)/python -m kauto_ops.smoke --stack $(STACK) $(SMOKE_ARGS)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam
