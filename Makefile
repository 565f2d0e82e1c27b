# VirtEngine Support — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the pinned dependencies

run: install ## Run the app: embedded PostgreSQL + Redis (unless DATABASE_URL/REDIS_URL), migrate, demo data, uvicorn + Celery worker + beat
	$(BIN)/python -m server.launcher

# pytest-xdist workers of `make test` (config/settings/test.py has Redis databases for 5; 0: no xdist). Each has
# a test database of its own; `--dist load` keeps the browser tests last on each worker (tests/conftest.py).
TEST_WORKERS ?= 2
SMOKE_OUT := .artifacts/bench-smoke.out

# The bench smoke pass runs beside pytest: its scripts mostly wait on the servers they start (about a quarter
# of a core), on databases and Redis databases of their own (bench/smoke.py, config/settings/test.py). Its
# output is printed after pytest's; either failing fails the target, and a stopped run stops it too.
test: install ## Run the whole test suite (ruff, the import layers, mypy, then pytest on real PostgreSQL and Redis beside the bench smoke pass)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	DATABASE_URL=postgres://mypy.invalid/mypy REDIS_URL=redis://mypy.invalid/0 $(BIN)/mypy
	@mkdir -p $(dir $(SMOKE_OUT)); \
	echo "$(BIN)/python -m bench.smoke > $(SMOKE_OUT) (beside pytest)"; \
	$(BIN)/python -m bench.smoke > $(SMOKE_OUT) 2>&1 & smoke=$$!; \
	trap 'kill -TERM $$smoke 2>/dev/null; wait $$smoke; exit 130' INT TERM; \
	echo "$(BIN)/pytest -n $(TEST_WORKERS) --dist load $(PYTEST_ARGS)"; \
	$(BIN)/pytest -n $(TEST_WORKERS) --dist load $(PYTEST_ARGS); tests=$$?; \
	wait $$smoke; bench=$$?; \
	cat $(SMOKE_OUT); \
	exit $$(( tests || bench ))

bench-smoke: install ## Every bench/ script once at a smoke size, seconds each (also run by `test`); NAMES="api_list …" for only those
	$(BIN)/python -m bench.smoke $(NAMES)
.PHONY: bench-smoke

fuzz: install ## Nightly-style fuzzing: schemathesis, every check, as customer (session and wallet), provider (strong HMAC) and support at 200 examples per operation; the Hypothesis input properties at 500
	VE_FUZZ_EXAMPLES=$${VE_FUZZ_EXAMPLES:-200} VE_PROPERTY_EXAMPLES=$${VE_PROPERTY_EXAMPLES:-500} \
		$(BIN)/pytest tests/fuzz -p no:cacheprovider --hypothesis-show-statistics $(PYTEST_ARGS)

lint: install ## ruff check + format check + the import layers (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	DATABASE_URL=postgres://mypy.invalid/mypy REDIS_URL=redis://mypy.invalid/0 $(BIN)/mypy

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

screenshots: install ## Refresh the README's screenshots (docs/screenshots) from the browser tests
	VE_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest tests/e2e

services-env: install ## Print DATABASE_URL / REDIS_URL of the embedded servers (starting them if needed)
	@$(BIN)/python -m server.devservices env

services-stop: install ## Stop the embedded PostgreSQL and Redis
	$(BIN)/python -m server.devservices stop

.PHONY: help install run test fuzz lint format screenshots services-env services-stop
