# Every target sets itself up: a fresh machine needs nothing but python3 (>= 3.11) and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_VERSION := 1.170.0
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help venv lint typecheck template-check checkov test unit integration demo serve bench clean

help:
	@echo "make demo            run the pipeline on the embedded local stack (moto + Kaltura simulator)"
	@echo "make serve           keep the local stack up for curl or a real Kaltura (KALTURA_* env vars; dry run)"
	@echo "make test            lint, type check, template checks, checkov and the whole test suite"
	@echo "make checkov         scan template.yaml with checkov (skips and reasons: .checkov.yaml)"
	@echo "make bench           run the benchmarks and print their figures"
	@echo "make clean           remove virtualenvs and caches"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed:
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

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy
	@for handler in functions/*/app.py; do $(BIN)/mypy "$$handler" || exit 1; done

template-check: venv $(SAM_VENV)/.installed
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --template template.yaml --region $(AWS_DEFAULT_REGION)

unit: venv
	$(BIN)/pytest tests/unit tests/template

integration: venv
	$(BIN)/pytest tests/integration

# Skips and their reasons: .checkov.yaml, and Metadata (checkov: skip) of single resources in template.yaml.
checkov: $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
	@echo "checkov: template.yaml (about 20 s)"
	@# No network: skip the download of Prisma Cloud guideline links.
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --file template.yaml

test: lint typecheck template-check checkov
	$(BIN)/pytest -n 2

demo: venv
	$(BIN)/python -m kauto_local.demo

serve: venv
	$(BIN)/python -m kauto_local.serve

bench: venv
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam
