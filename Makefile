# The two commands of the README: `make run` and `make test`. Both create .venv and install into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench install system-tools clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

system-tools:
	bash scripts/system-tools.sh

run: $(STAMP)
	$(BIN)/mcp-pa up

test: $(STAMP) system-tools
	$(BIN)/python -m pytest -q

bench: $(STAMP) system-tools
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mcp-pa .pytest_cache
