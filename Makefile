# One command per job. Every target creates the virtual environment when it is missing.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?= -n 2

.PHONY: install test lint format sandbox clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

## test: install what is missing, check lint, run every test
test: install
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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
