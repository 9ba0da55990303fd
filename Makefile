# One command per job. Every target creates the virtual environment when it is missing.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
MELTANO_VENV ?= .venv-meltano
PYTEST_ARGS ?= -n 2 --dist loadgroup
MELTANO_VERSION := 4.4.1
DAGSTER_VENV ?= .venv-dagster
DAGSTER_MELTANO_VERSION := 1.5.5
# Every package at the version the project was last tested with (`make lock` renews them).
LOCK := constraints.txt
MELTANO_LOCK := constraints-meltano.txt
DAGSTER_LOCK := constraints-dagster.txt

.PHONY: install meltano dagster postgres test lint format sandbox demo bench bench-quick clean lock

$(BIN)/.installed: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[test]"
	touch $@

install: $(BIN)/.installed

# Meltano lives in its own environment (it pins SQLAlchemy and click below what the plugins use);
# it gives each plugin a virtual environment of its own under .meltano/. With its `postgres`
# extra, its system database (and so the state) can live in PostgreSQL, shared by machines.
$(MELTANO_VENV)/bin/.installed: $(MELTANO_LOCK)
	test -x $(MELTANO_VENV)/bin/python || $(PYTHON) -m venv $(MELTANO_VENV)
	$(MELTANO_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(MELTANO_VENV)/bin/python -m pip install --quiet -c $(MELTANO_LOCK) "meltano[postgres]==$(MELTANO_VERSION)"
	touch $@

meltano: $(MELTANO_VENV)/bin/.installed

## dagster: the Dagster example (orchestrate/dagster) in an environment of its own
$(DAGSTER_VENV)/bin/.installed: $(DAGSTER_LOCK)
	test -x $(DAGSTER_VENV)/bin/python || $(PYTHON) -m venv $(DAGSTER_VENV)
	$(DAGSTER_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(DAGSTER_VENV)/bin/python -m pip install --quiet -c $(DAGSTER_LOCK) "dagster-meltano==$(DAGSTER_MELTANO_VERSION)"
	touch $@

dagster: $(DAGSTER_VENV)/bin/.installed

## postgres: PostgreSQL's server (Debian's package) for the shared-state test, when missing
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

## demo: both pipelines through `meltano run` against the local sandboxes, then an incremental run
demo: install meltano
	PATH="$(CURDIR)/$(MELTANO_VENV)/bin:$$PATH" $(BIN)/python scripts/demo.py

# Benchmark-only dependencies (matplotlib), kept out of `make test`.
$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[test,bench]"
	touch $@

## bench: every benchmark in one run (about 50 minutes); one table, a chart in benchmarks/results/
bench: install meltano $(BIN)/.bench-installed
	PATH="$(CURDIR)/$(MELTANO_VENV)/bin:$$PATH" $(BIN)/python benchmarks/suite.py $(BENCH_ARGS)

## bench-quick: the same, small sizes (a few minutes)
bench-quick:
	$(MAKE) bench BENCH_ARGS=--quick

## test: install what is missing, check lint, run every test
test: install meltano dagster postgres
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## sandbox: the three API emulators on fixed ports (Ctrl-C to stop)
sandbox: install
	$(BIN)/crm-sandbox serve --okki-port 8701 --twenty-port 8702 --jiandaoyun-port 8703 --companies 1000

## lock: resolve every dependency afresh from PyPI into constraints*.txt (review, test, commit)
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	.lock-venv/bin/python -m pip install --quiet -e ".[test,bench]"
	{ echo "# make lock: the plugins, tests and benchmarks' dependencies (pip install -c)"; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable; } > $(LOCK)
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	.lock-venv/bin/python -m pip install --quiet "meltano[postgres]==$(MELTANO_VERSION)"
	{ echo "# make lock: Meltano's dependencies (pip install -c)"; \
	  .lock-venv/bin/python -m pip freeze; } > $(MELTANO_LOCK)
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	.lock-venv/bin/python -m pip install --quiet "dagster-meltano==$(DAGSTER_MELTANO_VERSION)"
	{ echo "# make lock: the Dagster example's dependencies (orchestrate/dagster; pip install -c)"; \
	  .lock-venv/bin/python -m pip freeze; } > $(DAGSTER_LOCK)
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(MELTANO_VENV) $(DAGSTER_VENV) .meltano output .pytest_cache .ruff_cache
