# satgw developer entry points. A fresh clone needs only python3 with venv; see `make help`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall only when the dependencies change.
STAMP := $(VENV)/.installed
PIP := $(BIN)/python -m pip --disable-pip-version-check
# Extra pytest arguments, e.g. `make test PYTEST_ARGS='-k seal -x'`.
PYTEST_ARGS ?=
# Loads the service URLs (from scripts/services.sh) into a recipe's shell; stops the recipe when they are missing.
WITH_SERVICES := svc="$$(scripts/services.sh)"; eval "$$svc"

.PHONY: help venv services services-stop demo test lint lint-deploy bench clean distclean

help:
	@echo "make venv          create .venv and install satgw with its dev tools"
	@echo "make services      make sure Redis and Mosquitto answer (starts private ones if needed)"
	@echo "make demo          run 'satgw demo' against them"
	@echo "make test          run the whole test suite"
	@echo "make lint          ruff, mypy and the deploy/ linters"
	@echo "make bench         ingest benchmark"
	@echo "make services-stop stop the servers 'make services' started"
	@echo "make clean         stop those servers and remove caches and build output (distclean: also .venv)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ] || ! $(BIN)/python -m pip --version >/dev/null 2>&1; then \
	  echo "creating $(VENV) with $$($(PYTHON) --version 2>&1)"; \
	  $(PYTHON) -m venv $(VENV) || { \
	    echo "'$(PYTHON) -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }; \
	fi
	$(PIP) install --quiet -e '.[dev]'
	@touch $@

services:
	@scripts/services.sh

services-stop:
	@scripts/services.sh stop

demo: venv
	@$(WITH_SERVICES); exec $(BIN)/satgw demo

test: venv
	@$(WITH_SERVICES); exec $(BIN)/pytest $(PYTEST_ARGS)

# Every linter runs even when an earlier one fails, so one run shows all problems.
lint: venv
	@failed=0; \
	$(BIN)/ruff check . || failed=1; \
	$(BIN)/ruff format --check . || failed=1; \
	$(BIN)/mypy --strict gateway protocols bench || failed=1; \
	scripts/lint-deploy.sh || failed=1; \
	exit $$failed

lint-deploy: venv
	@scripts/lint-deploy.sh

bench: venv
	@$(WITH_SERVICES); $(BIN)/satgw bench packing && exec $(BIN)/satgw bench ingest

clean:
	-@scripts/services.sh stop
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
