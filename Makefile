# Connector Console. The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-postgres lint bench chromium clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

## run: install, migrate, create the demo superuser and connectors, serve on http://127.0.0.1:8000
## (make run PORT=9000 for another port: the demo connectors follow it)
## with a background worker and the scheduler (no broker needed); Ctrl-C stops all three
run: $(VENV)/.installed-run
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DJANGO_DEBUG=1 $(BIN)/python manage.py connectors_demo --base-url http://$(HOST):$(PORT)
	DJANGO_DEBUG=1 $(BIN)/python -m config.serve --host $(HOST) --port $(PORT)

## test: install what the tests need (Chromium from apt if missing) and run the whole suite
test: $(VENV)/.installed-dev chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## test-postgres: the same suite against the PostgreSQL at 127.0.0.1:5432 (database test)
test-postgres:
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} $(MAKE) test

chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Chromium from Debian's packages"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-dejavu-core; \
	fi

## lint: ruff, mypy (app code), import-linter contracts, and the complexity ceiling
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	DJANGO_DEBUG=1 $(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python .ci/complexity.py config connectors audit accounts

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/list_bench.py
	$(BIN)/python benchmarks/connector_test_bench.py

clean:
	rm -rf $(VENV) .pytest_cache staticfiles artifacts
