# Each target bootstraps .venv (Python 3.11) and installs the project when it is missing or out of date.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Offline (no analytics, no telemetry): `pricecast.process.go_offline`, called by the CLI, the tests and the benchmarks.

.PHONY: run test docs docs-serve server serve ui bench stack stack-down clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)  ## train the default forecaster on the embedded data, then backtest it (both skills side by side)
	$(BIN)/pricecast train --backtest $(ARGS)

test: $(STAMP)  ## format and lint checks, then the whole test suite (the docs build strict among them)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 3 --dist loadfile --no-loadscope-reorder $(ARGS)

docs: $(STAMP)  ## build the documentation site into site/ (strict: a warning fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(STAMP)  ## serve the documentation on http://127.0.0.1:8000, rebuilt on every save
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:8000

server: $(STAMP)  ## start this home's long-lived Prefect server and its warm process in the background (`pricecast server stop` stops both)
	$(BIN)/pricecast server start $(ARGS)

serve: $(STAMP)  ## serve the deployments (schedules and manual triggers) until stopped
	$(BIN)/pricecast serve $(ARGS)

ui: $(STAMP)  ## the MLflow UI on http://127.0.0.1:5000
	$(BIN)/pricecast ui $(ARGS)

bench: $(STAMP)  ## seeds, run time, overhead against the bare script, served model, fit, fan-out, quality (slow)
	$(BIN)/python bench/seed_spread.py $(ARGS)
	$(BIN)/python bench/run_time.py
	$(BIN)/python bench/overhead.py
	$(BIN)/python bench/serve_latency.py
	$(BIN)/python bench/fit_speed.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/quality.py

stack: $(STAMP)  ## team mode: Prefect and MLflow servers on PostgreSQL and two pool workers, on 127.0.0.1
	$(BIN)/pricecast stack up $(ARGS)

stack-down: $(STAMP)  ## stop what `make stack` started
	$(BIN)/pricecast stack down $(ARGS)

clean:
	rm -rf $(VENV) build site *.egg-info
